#!/usr/bin/env bash
# README command B: set up, build and run every test of one preset (default: dev).
#   bash scripts/test.sh [dev|consumer|release|ceilings|tsan|windows-cross]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
preset=${1:-dev}
if [ "$preset" = windows-cross ]; then bash "$root/scripts/setup.sh" --windows; else bash "$root/scripts/setup.sh"; fi
# shellcheck source=/dev/null
source "$root/.tools/env"
cd "$root"
if [ "$preset" = windows-cross ]; then
  # Start Wine once before ctest (a prefix in the build tree, made on first use): a cold Wine's
  # background processes keep ctest's pipes open and the tests hang. Stopped again at the end.
  export WINEDEBUG=-all WINEPREFIX="$root/build/windows-cross/wineprefix"
  mkdir -p "$root/build/windows-cross"
  echo "test: warming up Wine in $WINEPREFIX"
  wineboot -u >/dev/null 2>&1 || true
  wineserver -w
  wineserver -p
  wine cmd /c exit </dev/null >/dev/null 2>&1 || true
  trap 'wineserver -k 2>/dev/null || true' EXIT
  # One test at a time under Wine: every test process shares one wineserver, and a port block one
  # test found free can be taken meanwhile by a test beside it (bound with SO_EXCLUSIVEADDRUSE:
  # WSAEACCES).
  export CTEST_PARALLEL_LEVEL="${CTEST_PARALLEL_LEVEL:-1}"
fi
# As many tests at once as there are cores, unless the caller says otherwise (the presets name no
# job count). An empty CTEST_PARALLEL_LEVEL would mean the same to CMake >= 3.29.
export CTEST_PARALLEL_LEVEL="${CTEST_PARALLEL_LEVEL:-$(nproc)}"
echo "test: cmake --workflow --preset $preset (configure, build, ctest -j$CTEST_PARALLEL_LEVEL)"
cmake --workflow --preset "$preset"
