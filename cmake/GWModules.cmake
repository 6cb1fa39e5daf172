# gw_add_module(NAME <name> SOURCES ... [DEPENDS gw::a ...] [PRIVATE_DEPENDS ...])
#   One static library per module: modules/<name>/{include/gw/<name>,src}; target gw_<name>, alias gw::<name>.
# gw_add_app(NAME gw_<verb> [LIBS ...])  (target app_gw_<verb>, executable gw_<verb>)
#   A thin front end apps/gw_<verb>.cxx; registered for the generated contract tests and installed with
#   its Slicer CLI descriptor next to it.
# gw_add_unit_test(MODULE <name> SOURCES ... [LIBS ...])
#   One GoogleTest executable per module. Suites named *External get label 'external' (real data in
#   GW_EXTERNAL_DATA), *Slow get 'slow', everything else 'unit'.
include(GoogleTest)
include(GNUInstallDirs)

function(gw_add_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  set(_t gw_${M_NAME})
  if(NOT M_SOURCES)
    message(WARNING "GraftWatch module '${M_NAME}' has no sources yet: skipped")
    return()
  endif()
  foreach(_dep ${M_DEPENDS} ${M_PRIVATE_DEPENDS})
    if(_dep MATCHES "^gw::" AND NOT TARGET ${_dep})
      message(WARNING "GraftWatch module '${M_NAME}' skipped: ${_dep} is not built")
      return()
    endif()
  endforeach()
  add_library(${_t} STATIC ${M_SOURCES})
  add_library(gw::${M_NAME} ALIAS ${_t})
  target_include_directories(${_t} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${_t} PUBLIC ${M_DEPENDS} PRIVATE ${M_PRIVATE_DEPENDS} gw_warnings)
  set_target_properties(${_t} PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME ${M_NAME})
  set_property(GLOBAL APPEND PROPERTY GW_MODULES ${M_NAME})
  install(TARGETS ${_t} EXPORT GraftWatchTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

set(GW_SLICER_CLI_DIR "${CMAKE_INSTALL_LIBDIR}/graftwatch/cli-modules" CACHE STRING
    "Where apps are installed for 3D Slicer's 'additional module paths'")

function(gw_add_app)
  cmake_parse_arguments(A "" "NAME" "LIBS" ${ARGN})
  foreach(_lib ${A_LIBS})
    if(_lib MATCHES "^gw::" AND NOT TARGET ${_lib})
      message(WARNING "GraftWatch app '${A_NAME}' skipped: ${_lib} is not built")
      return()
    endif()
  endforeach()
  # Target app_<name> (module libraries own the gw_<module> target names), executable file <name>.
  set(_t app_${A_NAME})
  add_executable(${_t} ${A_NAME}.cxx)
  target_link_libraries(${_t} PRIVATE gw::cli ${A_LIBS} gw_warnings)
  set_target_properties(${_t} PROPERTIES OUTPUT_NAME ${A_NAME} RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
  set_property(GLOBAL APPEND PROPERTY GW_APPS ${A_NAME})
  install(TARGETS ${_t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(TARGETS ${_t} RUNTIME DESTINATION ${GW_SLICER_CLI_DIR})
endfunction()

function(gw_add_unit_test)
  cmake_parse_arguments(T "" "MODULE" "SOURCES;LIBS" ${ARGN})
  set(_t gw_${T_MODULE}_tests)
  add_executable(${_t} ${T_SOURCES})
  target_link_libraries(${_t} PRIVATE gw::${T_MODULE} gw_testing ${T_LIBS} GTest::gtest_main gw_warnings)
  set(_env "GW_EXTERNAL_DATA=${GW_EXTERNAL_DATA}" "GW_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
           "GW_TESTING_DATA=${PROJECT_SOURCE_DIR}/testing-data")
  gtest_discover_tests(${_t} TEST_FILTER "-*External.*:*Slow.*" DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "unit" ENVIRONMENT "${_env}")
  gtest_discover_tests(${_t} TEST_FILTER "*External.*" DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "external" ENVIRONMENT "${_env}" SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  gtest_discover_tests(${_t} TEST_FILTER "*Slow.*" DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "slow" ENVIRONMENT "${_env}")
endfunction()
