#!/usr/bin/env bash
# README command B: set up, build and run every test of one preset (default: dev).
#   bash scripts/test.sh [dev|release|asan|tsan]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
preset=${1:-dev}
bash "$root/scripts/setup.sh"
# shellcheck source=/dev/null
source "$root/.tools/env"
cd "$root"
echo "test: cmake --workflow --preset $preset (configure, build, ctest)"
cmake --workflow --preset "$preset"
