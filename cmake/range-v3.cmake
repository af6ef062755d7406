# range-v3 (Debian: librange-v3-dev), header-only, for the library's own implementation units
# only: no interface unit includes it, so importers never need it. Cross-compiling for Windows,
# only range-v3's own directory of the build machine's /usr/include is taken (glibc's headers
# must not shadow MinGW's), as for Asio.
if(WIN32 AND CMAKE_CROSSCOMPILING)
  find_path(CONNPOLICY_RANGE_V3_HOST_DIR range/v3/all.hpp PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH NO_DEFAULT_PATH)
  if(NOT CONNPOLICY_RANGE_V3_HOST_DIR)
    message(FATAL_ERROR "connpolicy: range-v3 not found (Debian: apt install librange-v3-dev)")
  endif()
  set(CONNPOLICY_RANGE_V3_INCLUDE_DIR "${PROJECT_BINARY_DIR}/range-v3-include")
  file(MAKE_DIRECTORY "${CONNPOLICY_RANGE_V3_INCLUDE_DIR}")
  foreach(dir range meta concepts std)  # what librange-v3-dev puts in /usr/include
    if(NOT EXISTS "${CONNPOLICY_RANGE_V3_INCLUDE_DIR}/${dir}")
      file(CREATE_LINK "${CONNPOLICY_RANGE_V3_HOST_DIR}/${dir}" "${CONNPOLICY_RANGE_V3_INCLUDE_DIR}/${dir}" SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(connpolicy SYSTEM PRIVATE "${CONNPOLICY_RANGE_V3_INCLUDE_DIR}")
else()
  find_package(range-v3 REQUIRED)
  target_link_libraries(connpolicy PRIVATE $<BUILD_INTERFACE:range-v3::range-v3>)
endif()
