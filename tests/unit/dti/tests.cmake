# the app tests run gw_dti and gw_track
add_dependencies(gw_dti_tests app_gw_dti app_gw_track)
