#!/usr/bin/env bash
# Runs one Windows program under Wine for ctest (CMAKE_CROSSCOMPILING_EMULATOR of the
# windows-cross preset), in the prefix that scripts/test.sh warmed up, with Wine's chatter off.
set -euo pipefail
export WINEDEBUG=-all
export WINEPREFIX=${WINEPREFIX:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/windows-cross/wineprefix}
exec wine "$@" </dev/null
