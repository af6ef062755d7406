#!/usr/bin/env bash
# README command A: set up, build and run the main demo.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=seed_story
bash "$root/scripts/setup.sh"
# shellcheck source=/dev/null
source "$root/.tools/env"
cd "$root"
echo "demo: configuring and building '$demo' (preset dev)"
cmake --preset dev >/dev/null
cmake --build --preset dev --target "$demo"
echo "demo: running build/dev/examples/$demo"
echo
"$root/build/dev/examples/$demo"
