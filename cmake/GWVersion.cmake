# Version and git SHA baked into gw/core/version.h (git SHA read at configure time; "unknown" outside git).
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE GW_GIT_SHA
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _gw_git_rc)
if(NOT _gw_git_rc EQUAL 0 OR GW_GIT_SHA STREQUAL "")
  set(GW_GIT_SHA "unknown")
endif()
set(GW_VERSION ${PROJECT_VERSION})
