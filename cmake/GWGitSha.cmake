# Script mode (cmake -DSOURCE_DIR=... -DOUT=... -P GWGitSha.cmake), run at every build: writes OUT, the git commit
# of the sources being built (with "-dirty" when tracked files differ from it; "unknown" outside git), and rewrites
# it only when that changes, so that provenance records the commit of the build, not of the last configure.
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE _sha
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR _sha STREQUAL "")
  set(_sha "unknown")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no
    WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE _changes
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND NOT _changes STREQUAL "")
    string(APPEND _sha "-dirty")
  endif()
endif()
set(_content "#pragma once\n// generated at build time by cmake/GWGitSha.cmake\n#define GW_GIT_SHA_STRING \"${_sha}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" _old)
  if(_old STREQUAL _content)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${_content}")
