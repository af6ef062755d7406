# Cross build for 64-bit Windows from Debian: clang-19 (it scans and builds C++20 modules for
# x86_64-w64-mingw32, where MinGW's GCC 12 cannot), MinGW-w64's headers and libraries, lld, and
# Wine to run what it builds (ctest runs every test through CMAKE_CROSSCOMPILING_EMULATOR).
# `bash scripts/setup.sh --windows` installs mingw-w64, wine, wine64 and lld-19.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_CXX_COMPILER clang++-19)
set(CMAKE_CXX_COMPILER_TARGET x86_64-w64-mingw32)
set(CMAKE_CXX_COMPILER_CLANG_SCAN_DEPS clang-scan-deps-19)
set(CMAKE_RC_COMPILER llvm-rc-19)

# clang picks MinGW's win32-thread libstdc++, which has no std::thread or std::mutex. A sysroot of
# two symlinks, made here in the build tree, points it at the posix-thread one instead.
set(_sysroot "${CMAKE_BINARY_DIR}/mingw-posix-sysroot")
if(NOT EXISTS "${_sysroot}/x86_64-w64-mingw32")
  file(MAKE_DIRECTORY "${_sysroot}/lib/gcc/x86_64-w64-mingw32")
  file(GLOB _gcc_posix LIST_DIRECTORIES true "/usr/lib/gcc/x86_64-w64-mingw32/*-posix")
  if(NOT _gcc_posix)
    message(FATAL_ERROR "MinGW-w64's posix-thread GCC runtime is missing: run `bash scripts/setup.sh --windows`")
  endif()
  list(GET _gcc_posix 0 _gcc_posix)
  get_filename_component(_gcc_version "${_gcc_posix}" NAME)
  string(REPLACE "-posix" "" _gcc_version "${_gcc_version}")
  file(CREATE_LINK "${_gcc_posix}" "${_sysroot}/lib/gcc/x86_64-w64-mingw32/${_gcc_version}" SYMBOLIC)
  file(CREATE_LINK "/usr/x86_64-w64-mingw32" "${_sysroot}/x86_64-w64-mingw32" SYMBOLIC)
endif()
set(CMAKE_SYSROOT "${_sysroot}")
set(CMAKE_FIND_ROOT_PATH "/usr/x86_64-w64-mingw32")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# MinGW's GCC-built libstdc++ keeps its thread_locals (std::call_once's state among them) in
# emulated TLS; clang must use the same, or those symbols do not link.
set(CMAKE_CXX_FLAGS_INIT "-femulated-tls")

# Static: Wine then needs no MinGW DLLs beside each program (a dynamic one exits 53, silently).
# --allow-multiple-definition: in C++23 libstdc++ 12 makes std::type_info::operator== inline
# (a COMDAT in our objects) while its static library also defines it plainly; COFF lld calls
# that a duplicate. Both definitions are the same code.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -fuse-ld=lld -pthread -Wl,--allow-multiple-definition")

# Each test runs under Wine, in a prefix of the build tree (made on first use).
find_program(CONNPOLICY_WINE wine REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/../../scripts/wine-run.sh")
