# the follow-up tests generate phantom studies
target_link_libraries(gw_followup_tests PRIVATE gw::phantom)
