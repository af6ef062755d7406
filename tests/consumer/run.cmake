# One consumer test: get connpolicy as HOW says (install, .deb, add_subdirectory, FetchContent),
# then configure, build and run the outside project in SOURCE_DIR. Each step's failure stops it.
#   cmake -D HOW=... -D BUILD_DIR=... -D SOURCE_DIR=... -D PROJECT_SOURCE=... -D WORK_DIR=...
#         -D CXX_COMPILER=... -D GENERATOR=... [-D CXX_FLAGS=... -D EXE_LINKER_FLAGS=... -D BUILD_TYPE=...
#         -D SANITIZE=address,undefined]
#         -D TESTING_LIBRARY=<build tree's libconnpolicy_testing.a> -P run.cmake
# A library from a sanitized tree (the dev preset's ASan + UBSan) needs the sanitizers' runtime in
# whatever links it: the outside project builds with the same -fsanitize list.
if(SANITIZE)
  string(APPEND CXX_FLAGS " -fsanitize=${SANITIZE} -fno-omit-frame-pointer")
  string(APPEND EXE_LINKER_FLAGS " -fsanitize=${SANITIZE}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer (${HOW}): ${what} failed (${rc})\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

# The production library must carry nothing of connpolicy.testing. Module-attached names are
# mangled with the module's name (W10connpolicy7testing) and the fakes' class names; the testing
# library itself must show them, or this check proves nothing.
function(check_no_test_support library)
  find_program(NM NAMES nm llvm-nm-19 llvm-nm REQUIRED)
  run_step("nm ${TESTING_LIBRARY}" ${NM} -C "${TESTING_LIBRARY}")
  if(NOT last_output MATCHES "FakeSystem" OR NOT last_output MATCHES "LoopbackServer")
    message(FATAL_ERROR "consumer: nm finds no FakeSystem/LoopbackServer in ${TESTING_LIBRARY}: the check below would prove nothing")
  endif()
  run_step("nm ${library}" ${NM} -C "${library}")
  string(REGEX MATCHALL "[^\n]*(FakeSystem|ManualTimer|FakeCensus|LoopbackServer|connpolicy\\.testing)[^\n]*" found "${last_output}")
  if(found)
    list(LENGTH found n)
    list(GET found 0 first)
    message(FATAL_ERROR "consumer: the production library ${library} has ${n} test-support symbols, e.g. ${first}")
  endif()
  message("consumer: nm finds no test-support symbol in ${library}")
endfunction()

set(configure_args)
if(HOW STREQUAL "find_package" OR HOW STREQUAL "find_package_testing")
  set(component_args)
  if(HOW STREQUAL "find_package")
    set(component_args --component library)  # a user who installs only the library
  endif()
  run_step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" ${component_args})
  file(GLOB_RECURSE installed "${prefix}/*connpolicy*.a" "${prefix}/*connpolicy*.lib")
  if(HOW STREQUAL "find_package")
    if(NOT installed MATCHES "libconnpolicy\\.a|connpolicy\\.lib" OR installed MATCHES "testing")
      message(FATAL_ERROR "consumer: the library component installed '${installed}'")
    endif()
    check_no_test_support("${installed}")
  endif()
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${prefix}")
elseif(HOW STREQUAL "deb")
  get_filename_component(cmake_bin_dir "${CMAKE_COMMAND}" DIRECTORY)
  find_program(CPACK NAMES cpack HINTS "${cmake_bin_dir}" NO_DEFAULT_PATH REQUIRED)
  run_step("cpack -G DEB" "${CPACK}" -G DEB -B "${WORK_DIR}/packages" WORKING_DIRECTORY "${BUILD_DIR}")
  file(GLOB debs "${WORK_DIR}/packages/*.deb")
  list(LENGTH debs n)
  set(expected_debs 2)
  if(WITH_ASIO)
    math(EXPR expected_debs "${expected_debs} + 1")  # libconnpolicy-asio-dev
  endif()
  if(WITH_COMMAND)
    math(EXPR expected_debs "${expected_debs} + 1")  # connpolicy (the command)
  endif()
  if(NOT n EQUAL expected_debs)
    message(FATAL_ERROR "consumer: cpack made ${n} .deb files, expected ${expected_debs}: ${debs}")
  endif()
  foreach(deb IN LISTS debs)
    run_step("dpkg-deb -x ${deb}" dpkg-deb -x "${deb}" "${WORK_DIR}/root")
  endforeach()
  foreach(expected usr/share/doc/connpolicy/LICENSE usr/share/connpolicy/modules/connpolicy.cppm)
    if(NOT EXISTS "${WORK_DIR}/root/${expected}")
      message(FATAL_ERROR "consumer: the .deb lacks ${expected}")
    endif()
  endforeach()
  if(WITH_COMMAND)  # the command, unpacked, runs and knows its subcommands
    run_step("connpolicy --help from the .deb" "${WORK_DIR}/root/usr/bin/connpolicy" --help)
    if(NOT last_output MATCHES "doctor" OR NOT last_output MATCHES "probe" OR NOT last_output MATCHES "census")
      message(FATAL_ERROR "consumer: the .deb's connpolicy --help names no doctor/probe/census:\n${last_output}")
    endif()
  endif()
  file(GLOB_RECURSE production "${WORK_DIR}/root/usr/*libconnpolicy.a")
  check_no_test_support("${production}")
  # The packages hold the install tree, file for file and byte for byte (the CMake package files
  # use paths relative to their prefix): then an outside project built against the unpacked /usr
  # is the one `consumer: find_package_testing` builds against its install prefix, and is not
  # built a second time here.
  run_step("install every component" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/installed")
  file(GLOB_RECURSE from_install RELATIVE "${WORK_DIR}/installed" "${WORK_DIR}/installed/*")
  file(GLOB_RECURSE from_debs RELATIVE "${WORK_DIR}/root/usr" "${WORK_DIR}/root/usr/*")
  list(SORT from_install)
  list(SORT from_debs)
  if(NOT from_install STREQUAL from_debs)
    set(only_install ${from_install})
    list(REMOVE_ITEM only_install ${from_debs})
    set(only_debs ${from_debs})
    list(REMOVE_ITEM only_debs ${from_install})
    message(FATAL_ERROR "consumer: the .deb files and the install tree differ: only installed: '${only_install}'; "
                        "only in the .debs: '${only_debs}'")
  endif()
  foreach(f IN LISTS from_install)
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${WORK_DIR}/installed/${f}" "${WORK_DIR}/root/usr/${f}"
                    RESULT_VARIABLE differs)
    if(differs)
      message(FATAL_ERROR "consumer: ${f} in the .deb is not the file cmake --install writes")
    endif()
  endforeach()
  list(LENGTH from_install n)
  message("consumer (deb): the ${n} files of the packages are the install tree's, byte for byte; "
          "consumer: find_package_testing builds and runs an outside project against that tree")
  message("consumer (${HOW}): every step passed")
  return()
elseif(HOW STREQUAL "add_subdirectory")
  list(APPEND configure_args "-DCONNPOLICY_SOURCE_DIR=${PROJECT_SOURCE}")
elseif(HOW STREQUAL "fetchcontent")
  # A tarball of what a release would hold; FetchContent downloads (here: copies) and unpacks it.
  run_step("archive" ${CMAKE_COMMAND} -E tar czf "${WORK_DIR}/connpolicy.tar.gz" CMakeLists.txt LICENSE cmake modules policies
           WORKING_DIRECTORY "${PROJECT_SOURCE}")
  list(APPEND configure_args "-DCONNPOLICY_ARCHIVE=file://${WORK_DIR}/connpolicy.tar.gz")
else()
  message(FATAL_ERROR "consumer: unknown HOW '${HOW}'")
endif()

run_step("configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
  "-DCONSUMER_HOW=${HOW}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" ${configure_args})
run_step("build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run_step("run consumer" "${WORK_DIR}/build/consumer")
message("${last_output}")
if(EXISTS "${WORK_DIR}/build/consumer_testing")
  run_step("run consumer_testing" "${WORK_DIR}/build/consumer_testing")
  message("${last_output}")
endif()
if(EXISTS "${WORK_DIR}/build/consumer_asio")
  run_step("run consumer_asio" "${WORK_DIR}/build/consumer_asio")
  message("${last_output}")
elseif(WITH_ASIO AND HOW STREQUAL "find_package_testing")
  message(FATAL_ERROR "consumer: the Asio driver is built here but the installed package gave no connpolicy::asio")
endif()
message("consumer (${HOW}): every step passed")
