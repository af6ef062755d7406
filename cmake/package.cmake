# `cpack -G DEB` (run in a build tree) makes two Debian packages from the install components:
#   libconnpolicy-dev          the library, its module sources, the CMake package files, the licence
#   libconnpolicy-testing-dev  connpolicy::testing (fakes for unit tests), which depends on the first
# The test "package: .deb" unpacks both with dpkg-deb -x (no root) and builds an outside project
# against them.
set(CPACK_PACKAGE_NAME connpolicy)
set(CPACK_PACKAGE_VENDOR "connpolicy")
set(CPACK_PACKAGE_CONTACT "connpolicy developers <connpolicy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_COMPONENTS_ALL library testing)
if(TARGET connpolicy_asio)
  list(APPEND CPACK_COMPONENTS_ALL asio)
  set(CPACK_DEBIAN_ASIO_PACKAGE_NAME libconnpolicy-asio-dev)
  set(CPACK_DEBIAN_ASIO_PACKAGE_DEPENDS "libconnpolicy-dev (= ${PROJECT_VERSION}), libasio-dev (>= 1:1.22)")
  set(CPACK_COMPONENT_ASIO_DESCRIPTION "connpolicy::asio: the Asio driver (async_connect, TcpSocket)")
  set(CPACK_COMPONENT_ASIO_DEPENDS library)
endif()
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_LIBRARY_PACKAGE_NAME libconnpolicy-dev)
set(CPACK_DEBIAN_TESTING_PACKAGE_NAME libconnpolicy-testing-dev)
set(CPACK_DEBIAN_TESTING_PACKAGE_DEPENDS "libconnpolicy-dev (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_LIBRARY_DESCRIPTION "connpolicy: the library and its C++20 module sources")
set(CPACK_COMPONENT_TESTING_DESCRIPTION "connpolicy::testing: fake system API, virtual clock, fake census, loopback server")
set(CPACK_COMPONENT_TESTING_DEPENDS library)
include(CPack)
