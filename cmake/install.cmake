# Installs the library, its module sources (consumers build their own BMIs from them, as CMake
# requires) and a package config so that `find_package(connpolicy)` + `import connpolicy;` work.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(connpolicy_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/connpolicy")

install(TARGETS connpolicy
  EXPORT connpolicy-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  FILE_SET CXX_MODULES DESTINATION "${CMAKE_INSTALL_DATADIR}/connpolicy/modules")

install(EXPORT connpolicy-targets
  NAMESPACE connpolicy::
  DESTINATION "${connpolicy_cmake_dir}"
  CXX_MODULES_DIRECTORY cxx-modules)

configure_package_config_file(cmake/connpolicyConfig.cmake.in
  "${PROJECT_BINARY_DIR}/connpolicyConfig.cmake"
  INSTALL_DESTINATION "${connpolicy_cmake_dir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/connpolicyConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/connpolicyConfig.cmake"
              "${PROJECT_BINARY_DIR}/connpolicyConfigVersion.cmake"
        DESTINATION "${connpolicy_cmake_dir}")
