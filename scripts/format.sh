#!/usr/bin/env bash
# Formats every C++ file git knows with the committed .clang-format (clang-format 19).
#   bash scripts/format.sh          rewrite the files in place
#   bash scripts/format.sh --check  change nothing; fail and list the places that differ (CI runs this)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format-19 >/dev/null || { echo "format: clang-format-19 is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.cppm' '*.hpp')
if [ "${1:-}" = "--check" ]; then
  echo "format: checking ${#files[@]} files against .clang-format"
  clang-format-19 --dry-run -Werror "${files[@]}"
  echo "format: all ${#files[@]} files are formatted"
else
  clang-format-19 -i "${files[@]}"
  echo "format: formatted ${#files[@]} files"
fi
