#!/usr/bin/env bash
# The developer's quick loop: rebuild the dev tree (only the programs the chosen tests run) and
# run the tests a change touches. Minutes, not the half hour of the full CI (.ci/run), which
# remains the bar before a stop.
#
#   bash scripts/quick.sh                  # the labels the files changed since HEAD touch (git)
#   bash scripts/quick.sh unit asio        # these labels
#   bash scripts/quick.sh -R 'rotation'    # the tests whose name matches (ctest -R), any label
#
# Labels: unit, integration, asio, command, example, bench, static (must-not-compile cases, README
# blocks, sizes), consumer (packaging: slow, see docs/building.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf 'quick: %s\n' "$*"; }

labels=()
name_regex=""
while [ $# -gt 0 ]; do
  case "$1" in
    -R) [ $# -ge 2 ] || { echo "quick: -R needs a regular expression" >&2; exit 2; }; name_regex=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    unit|integration|asio|command|example|bench|static|consumer) labels+=("$1"); shift ;;
    *) echo "quick: unknown label or option '$1' (labels: unit integration asio command example bench static consumer; or -R REGEX)" >&2; exit 2 ;;
  esac
done

# Which labels a changed file touches: the library touches every test that runs its code.
labels_for() {
  case "$1" in
    modules/asio/*|tests/asio/*|cmake/asio.cmake) echo asio example ;;
    modules/testing/*) echo unit integration asio command example ;;
    modules/*|policies/*) echo unit integration asio command example bench ;;
    cli/*|tests/cli/*) echo command ;;
    tests/unit/*|tests/windows/*) echo unit ;;
    tests/integration/*) echo integration ;;
    tests/static/*|tests/scripts/*|README.md|scripts/check-sizes.py|scripts/bench.sh|CMakePresets.json) echo static ;;
    tests/consumer/*|cmake/install.cmake|cmake/*.cmake.in) echo consumer ;;
    tests/support/*) echo unit integration asio command example ;;
    examples/*) echo example ;;
    bench/*) echo bench ;;
    CMakeLists.txt|tests/CMakeLists.txt|cmake/*) echo unit integration asio command example bench static ;;
    *) ;;  # docs, scripts: no test runs them
  esac
}
if [ ${#labels[@]} -eq 0 ] && [ -z "$name_regex" ]; then
  changed=$( { git diff --name-only HEAD; git ls-files --others --exclude-standard; } 2>/dev/null | sort -u)
  [ -n "$changed" ] || { say "nothing changed since HEAD: name labels or -R (bash scripts/quick.sh --help)"; exit 0; }
  for f in $changed; do for l in $(labels_for "$f"); do labels+=("$l"); done; done
  [ ${#labels[@]} -gt 0 ] || { say "the change touches no test (docs only?); name labels or -R to run some"; exit 0; }
  mapfile -t labels < <(printf '%s\n' "${labels[@]}" | sort -u)
  say "changed: $(echo $changed | tr '\n' ' ')"
fi

# The programs each label's tests run: the rest of the tree is not rebuilt.
targets=()
for l in "${labels[@]}"; do
  case "$l" in
    unit) targets+=(connpolicy_unit_tests) ;;
    integration) targets+=(connpolicy_integration_tests connpolicy_restart_client) ;;
    asio) targets+=(connpolicy_asio_tests) ;;
    command) targets+=(connpolicy_command connpolicy_command_tests connpolicy_command_run_tests) ;;
    example) targets+=(seed_story custom_policy policies_in_tests free_port name_race async_login connpolicy_in_own_netns) ;;
    bench) targets+=(connect_cycles async_cycles herd_simulation fleet_simulation rotation_storm census_cost scale_hold
                     happy_eyeballs lossy_connect) ;;
    static) ;;  # each test builds its own case
    consumer) targets+=(all) ;;  # packaging installs everything
  esac
done
[ -n "$name_regex" ] && targets=(all)

bash "$root/scripts/setup.sh" >/dev/null
# shellcheck source=/dev/null
source "$root/.tools/env"
[ -f build/dev/build.ninja ] || { say "configuring the dev preset (first run)"; cmake --preset dev >/dev/null; }
start=$SECONDS
if [ ${#targets[@]} -gt 0 ]; then
  mapfile -t targets < <(printf '%s\n' "${targets[@]}" | sort -u)
  say "building ${targets[*]}"
  cmake --build --preset dev --target "${targets[@]}"
fi
# The dev tree's tests as its test preset runs them, consumer tests included when asked for.
ctest_args=(--test-dir build/dev --output-on-failure --timeout 300 --no-tests=error -j "${CTEST_PARALLEL_LEVEL:-$(nproc)}")
if [ -n "$name_regex" ]; then
  ctest_args+=(-R "$name_regex")
  say "running the tests whose name matches '$name_regex'"
else
  ctest_args+=(-L "^($(IFS='|'; echo "${labels[*]}"))\$")
  say "running the tests labelled ${labels[*]}"
fi
ctest "${ctest_args[@]}"
say "done in $((SECONDS - start)) s (the full CI before a stop: bash .ci/run)"
