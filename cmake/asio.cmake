# The Asio driver, connpolicy::asio (module connpolicy.asio): built when standalone Asio's header
# is found (Debian: libasio-dev; scripts/setup.sh installs it). CONNPOLICY_ASIO=OFF leaves it out,
# ON makes a missing Asio an error.
set(CONNPOLICY_ASIO AUTO CACHE STRING "Build the Asio driver: AUTO (when Asio is found), ON or OFF")
set_property(CACHE CONNPOLICY_ASIO PROPERTY STRINGS AUTO ON OFF)
if(CONNPOLICY_ASIO STREQUAL "OFF")
  return()
endif()

if(WIN32 AND CMAKE_CROSSCOMPILING)
  # Header-only: take the build machine's Asio alone, without the rest of its /usr/include
  # (glibc's headers must not shadow MinGW's), as the tests do with Catch2's header.
  find_path(CONNPOLICY_ASIO_HOST_DIR asio.hpp PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH NO_DEFAULT_PATH)
  if(CONNPOLICY_ASIO_HOST_DIR)
    set(CONNPOLICY_ASIO_INCLUDE_DIR "${PROJECT_BINARY_DIR}/asio-include")
    if(NOT EXISTS "${CONNPOLICY_ASIO_INCLUDE_DIR}/asio")
      file(MAKE_DIRECTORY "${CONNPOLICY_ASIO_INCLUDE_DIR}")
      file(CREATE_LINK "${CONNPOLICY_ASIO_HOST_DIR}/asio" "${CONNPOLICY_ASIO_INCLUDE_DIR}/asio" SYMBOLIC)
      file(CREATE_LINK "${CONNPOLICY_ASIO_HOST_DIR}/asio.hpp" "${CONNPOLICY_ASIO_INCLUDE_DIR}/asio.hpp" SYMBOLIC)
    endif()
  endif()
else()
  find_path(CONNPOLICY_ASIO_INCLUDE_DIR asio.hpp)
endif()
if(NOT CONNPOLICY_ASIO_INCLUDE_DIR)
  if(CONNPOLICY_ASIO STREQUAL "ON")
    message(FATAL_ERROR "connpolicy: CONNPOLICY_ASIO=ON but asio.hpp was not found (Debian: apt install libasio-dev)")
  endif()
  message(STATUS "connpolicy: Asio not found: the Asio driver (connpolicy::asio) is not built")
  return()
endif()
message(STATUS "connpolicy: Asio driver from ${CONNPOLICY_ASIO_INCLUDE_DIR}")

add_library(connpolicy_asio)
add_library(connpolicy::asio ALIAS connpolicy_asio)
set_target_properties(connpolicy_asio PROPERTIES EXPORT_NAME asio)
target_link_libraries(connpolicy_asio PUBLIC connpolicy)
target_include_directories(connpolicy_asio SYSTEM PUBLIC "$<BUILD_INTERFACE:${CONNPOLICY_ASIO_INCLUDE_DIR}>")
# Asio 1.22 turns on co_await for clang only with <experimental/coroutine>; libstdc++ has the
# standard <coroutine>. Importers must see the same Asio as the module: PUBLIC.
target_compile_definitions(connpolicy_asio PUBLIC ASIO_HAS_CO_AWAIT=1 ASIO_NO_DEPRECATED)
if(WIN32)
  target_link_libraries(connpolicy_asio PUBLIC mswsock)
  if(MINGW)
    # Asio guesses whether a build has threads from _MT or _REENTRANT, which clang for MinGW does
    # not define: it then makes its mutexes no-ops, its thread-local call stacks one plain pointer
    # and its threads unstartable (the I/O completion port backend's timer thread fails with
    # "thread: asio.system error"), and an io_context run by several threads corrupts itself.
    # Tell it. Its thread-local pointers then use __thread (emulated TLS, as MinGW's libstdc++
    # needs), which needs no constructor, rather than TlsAlloc in a static member's constructor.
    target_compile_definitions(connpolicy_asio PUBLIC ASIO_HAS_THREADS=1 ASIO_HAS_THREAD_KEYWORD_EXTENSION=1)
  endif()
else()
  find_package(Threads REQUIRED)
  target_link_libraries(connpolicy_asio PUBLIC Threads::Threads)
endif()
target_sources(connpolicy_asio
  PUBLIC
    FILE_SET CXX_MODULES
    BASE_DIRS modules
    FILES
      modules/asio/tcp_socket.cppm
      modules/asio/connect_state.cppm
      modules/asio/helper_thread.cppm
      modules/asio/round_lookups.cppm
      modules/asio/attempts.cppm
      modules/asio/async_connect.cppm
      modules/asio/api.cppm
      modules/asio/asio.cppm)
connpolicy_set_warnings(connpolicy_asio)
if(NOT PROJECT_IS_TOP_LEVEL)
  # Under add_subdirectory/FetchContent: built only when something links connpolicy::asio.
  set_target_properties(connpolicy_asio PROPERTIES EXCLUDE_FROM_ALL ON)
endif()
