# Use ccache when present (CI and developer machines): a cold build on 2 cores is a design constraint.
find_program(GW_CCACHE ccache)
if(GW_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${GW_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${GW_CCACHE})
  message(STATUS "GraftWatch: using ccache ${GW_CCACHE}")
endif()
