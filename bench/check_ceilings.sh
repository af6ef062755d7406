#!/usr/bin/env bash
# Instructions per connect cycle against their ceilings (bench/instruction_ceilings.txt): each loop
# runs under callgrind for 200 and 1200 cycles, and the difference over 1000 cancels the start-up.
#   bash bench/check_ceilings.sh BENCH_BIN_DIR [CEILINGS_FILE]
# A release build without sanitizers (the ceilings preset), and valgrind, are needed.
set -euo pipefail
bin=${1:?usage: check_ceilings.sh BENCH_BIN_DIR [CEILINGS_FILE]}
ceilings=${2:-$(dirname "${BASH_SOURCE[0]}")/instruction_ceilings.txt}
command -v valgrind >/dev/null || { echo "check_ceilings: valgrind is missing (scripts/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
over=0 checked=0
while read -r program mode collect measured ceiling; do
  case "$program" in ''|'#'*) continue ;; esac
  [ -x "$bin/$program" ] || { echo "check_ceilings: $bin/$program was not built" >&2; exit 1; }
  declare -A total=()
  for n in 200 1200; do
    valgrind --tool=callgrind --toggle-collect="$collect" --callgrind-out-file="$tmp/cg.$n" \
      "$bin/$program" "$mode" "$n" >"$tmp/out" 2>"$tmp/err" \
      || { echo "check_ceilings: $program $mode $n failed under callgrind:" >&2; cat "$tmp/err" >&2; exit 1; }
    total[$n]=$(awk '/^totals:|^summary:/ {print $2; exit}' "$tmp/cg.$n")
    [ -n "${total[$n]}" ] || { echo "check_ceilings: no instruction total for $program $mode $n" >&2; exit 1; }
  done
  per_cycle=$(( (total[1200] - total[200]) / 1000 ))
  checked=$((checked + 1))
  if [ "$per_cycle" -gt "$ceiling" ]; then
    echo "check_ceilings: $program $mode: $per_cycle instructions per cycle, ABOVE its ceiling $ceiling (measured $measured when set)"
    over=$((over + 1))
  else
    echo "check_ceilings: $program $mode: $per_cycle instructions per cycle (ceiling $ceiling, measured $measured when set)"
  fi
done <"$ceilings"
[ "$checked" -gt 0 ] || { echo "check_ceilings: no ceiling read from $ceilings" >&2; exit 1; }
if [ "$over" -gt 0 ]; then
  echo "check_ceilings: $over of $checked loops above their ceilings: find what made them dearer (callgrind_annotate), or raise the ceiling in $ceilings and say why" >&2
  exit 1
fi
echo "check_ceilings: all $checked loops under their ceilings"
