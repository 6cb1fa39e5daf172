# the follow-up tests generate phantom studies
target_link_libraries(gw_followup_tests PRIVATE gw::phantom)
# the measurement helpers are internal to the module (modules/followup/src/measurements.h): tested directly
target_include_directories(gw_followup_tests PRIVATE ${CMAKE_SOURCE_DIR}/modules/followup/src)
