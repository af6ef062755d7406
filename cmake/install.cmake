# Installs the library, its module sources (consumers build their own BMIs from them, as CMake
# requires) and a package config, in two components:
#   library  connpolicy::connpolicy      find_package(connpolicy)
#   testing  connpolicy::testing         find_package(connpolicy COMPONENTS testing)
#   asio     connpolicy::asio            find_package(connpolicy COMPONENTS asio)  (when built)
# The testing component is a separate export set, so a plain find_package(connpolicy) defines (and
# builds) none of the test support.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(connpolicy_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/connpolicy")

install(TARGETS connpolicy
  EXPORT connpolicy-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT library
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT library
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT library
  FILE_SET CXX_MODULES DESTINATION "${CMAKE_INSTALL_DATADIR}/connpolicy/modules" COMPONENT library)
install(EXPORT connpolicy-targets
  NAMESPACE connpolicy::
  DESTINATION "${connpolicy_cmake_dir}"
  CXX_MODULES_DIRECTORY cxx-modules
  COMPONENT library)

install(TARGETS connpolicy_testing
  EXPORT connpolicy-testing-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT testing
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT testing
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT testing
  FILE_SET CXX_MODULES DESTINATION "${CMAKE_INSTALL_DATADIR}/connpolicy/modules" COMPONENT testing)
install(EXPORT connpolicy-testing-targets
  NAMESPACE connpolicy::
  DESTINATION "${connpolicy_cmake_dir}"
  CXX_MODULES_DIRECTORY cxx-modules-testing
  COMPONENT testing)

if(TARGET connpolicy_asio)
  install(TARGETS connpolicy_asio
    EXPORT connpolicy-asio-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT asio
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT asio
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT asio
    FILE_SET CXX_MODULES DESTINATION "${CMAKE_INSTALL_DATADIR}/connpolicy/modules" COMPONENT asio)
  install(EXPORT connpolicy-asio-targets
    NAMESPACE connpolicy::
    DESTINATION "${connpolicy_cmake_dir}"
    CXX_MODULES_DIRECTORY cxx-modules-asio
    COMPONENT asio)
endif()

configure_package_config_file(cmake/connpolicyConfig.cmake.in
  "${PROJECT_BINARY_DIR}/connpolicyConfig.cmake"
  INSTALL_DESTINATION "${connpolicy_cmake_dir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/connpolicyConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/connpolicyConfig.cmake"
              "${PROJECT_BINARY_DIR}/connpolicyConfigVersion.cmake"
        DESTINATION "${connpolicy_cmake_dir}"
        COMPONENT library)
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/connpolicy"
        COMPONENT library)

include(cmake/package.cmake)
