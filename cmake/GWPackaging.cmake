# Installed CMake package (find_package(GraftWatch) in a downstream project) and a Debian package (CPack).
include(CMakePackageConfigHelpers)

install(TARGETS gw_warnings EXPORT GraftWatchTargets)
get_property(GW_EXPORTED_MODULES GLOBAL PROPERTY GW_MODULES)
set(_gw_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/GraftWatch)
install(EXPORT GraftWatchTargets NAMESPACE GraftWatch:: DESTINATION ${_gw_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/GraftWatchConfig.cmake.in
  ${PROJECT_BINARY_DIR}/GraftWatchConfig.cmake
  INSTALL_DESTINATION ${_gw_cmake_dir}
  PATH_VARS CMAKE_INSTALL_BINDIR GW_SLICER_CLI_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/GraftWatchConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/GraftWatchConfig.cmake ${PROJECT_BINARY_DIR}/GraftWatchConfigVersion.cmake
  DESTINATION ${_gw_cmake_dir})
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} OPTIONAL)
if(EXISTS ${PROJECT_SOURCE_DIR}/workflow)
  install(DIRECTORY workflow/ DESTINATION ${CMAKE_INSTALL_DATADIR}/graftwatch/workflow)
endif()

# CPack: `cpack -G DEB` in the build directory → graftwatch_<version>_<arch>.deb
set(CPACK_PACKAGE_NAME graftwatch)
set(CPACK_PACKAGE_VENDOR "GraftWatch")
set(CPACK_PACKAGE_CONTACT "GraftWatch developers <graftwatch@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MRI/DTI follow-up and safety flags after neural stem cell transplantation")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
# Runtime libraries of the apps (Debian 12 package names); -dev packages for find_package users.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libinsighttoolkit5.2, libdcmtk17, libopenjp2-7, zlib1g, libisal2, libnettle8, libinsighttoolkit5-dev, libdcmtk-dev, libeigen3-dev, nlohmann-json3-dev, libcli11-dev")
include(CPack)
