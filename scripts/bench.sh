#!/usr/bin/env bash
# Runs the benchmarks side by side with their baselines, in one run, and writes
# docs/benchmarks.md (figures, machine, kernel, the commands that reproduce each).
#   bash scripts/bench.sh            # release build; about 12 minutes on 2 cores (the TIME_WAIT
#                                    # storms wait for the kernel's 60 s timers, in parallel)
# Benchmarks never pass or fail on speed; ctest runs only tiny smoke runs of them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
# shellcheck source=/dev/null
source "$root/.tools/env"
cd "$root"
for tool in valgrind strace haproxy; do
  command -v "$tool" >/dev/null && continue
  echo "bench: installing $tool"
  [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
  apt-get install -y -qq "$tool" >/dev/null || { echo "bench: error: apt-get install $tool failed" >&2; exit 1; }
done
# Every program this script runs, and exactly the targets of the `bench` build preset (ctest
# "bench: the bench preset builds what scripts/bench.sh runs" compares the three lists).
programs=(connect_cycles async_cycles herd_simulation fleet_simulation rotation_storm census_cost scale_hold
  happy_eyeballs lossy_connect)
echo "bench: building the release preset (${programs[*]})"
cmake --preset release >/dev/null
cmake --build --preset bench >/dev/null
bin=build/release/bench
for program in "${programs[@]}"; do
  # A program the preset did not build is an error, never a "skipped" section.
  [ -x "$bin/$program" ] || { echo "bench: error: $bin/$program was not built (cmake --build --preset bench)" >&2; exit 1; }
done
out=docs/benchmarks.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
modes=(raw_nobind connpolicy_nobind raw_ephemeral connpolicy_ephemeral raw_rotation connpolicy_rotation)

# P1a: user-space instructions per cycle (callgrind, the client loop only). The difference of a
# long and a short run cancels the fixed start-up cost.
declare -A ir
for mode in "${modes[@]}"; do
  for n in 200 1200; do
    echo "bench: P1 callgrind $mode x $n"
    valgrind --tool=callgrind --toggle-collect='*run_*' --callgrind-out-file="$tmp/cg.$mode.$n" \
      "$bin/connect_cycles" "$mode" "$n" >/dev/null 2>&1
    ir[$mode.$n]=$(awk '/^totals:|^summary:/ {print $2; exit}' "$tmp/cg.$mode.$n")
  done
done
per_cycle() { echo $(( (${ir[$1.1200]} - ${ir[$1.200]}) / 1000 )); }

# P1b: syscalls per cycle (strace -c counts the main thread, where the client loop runs).
declare -A sc
for mode in "${modes[@]}"; do
  echo "bench: P1 strace $mode"
  strace -c -U calls,name -o "$tmp/st.$mode" "$bin/connect_cycles" "$mode" 1000 >/dev/null
  sc[$mode]=$(awk '$1 ~ /^[0-9]+$/ && $2 != "total" && $1 >= 900 {printf "%s %.2f, ", $2, $1 / 1000}' "$tmp/st.$mode" | sed 's/, $//')
done

# P3: cycles per second, raw and connpolicy back to back in each of 9 rounds. This machine's
# noise is as large as the effect (single runs differ by +-20 %), so the table gives the median of
# the per-round ratios and their range, not just a ratio of medians.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
declare -A rates ratios
for round in 1 2 3 4 5 6 7 8 9; do
  echo "bench: P3 round $round of 9"
  for pair in nobind ephemeral rotation; do
    raw=$("$bin/connect_cycles" "raw_$pair" 5000 | awk '{print $(NF-1)}')
    ours=$("$bin/connect_cycles" "connpolicy_$pair" 5000 | awk '{print $(NF-1)}')
    rates[raw_$pair]="${rates[raw_$pair]:-} $raw"
    rates[connpolicy_$pair]="${rates[connpolicy_$pair]:-} $ours"
    ratios[$pair]="${ratios[$pair]:-} $(ratio "$ours" "$raw")"
  done
done
# P7: the Asio driver against a hand-written Asio loop: instructions (callgrind; the loops are
# named p7_loop_* because Asio's own do_run_one matches *run_*), syscalls and rates, as P1 and P3.
async_modes=(asio_nobind connpolicy_nobind asio_rotation connpolicy_rotation)
for mode in "${async_modes[@]}"; do
  for n in 200 1200; do
    echo "bench: P7 callgrind $mode x $n"
    valgrind --tool=callgrind --toggle-collect='*p7_loop*' --callgrind-out-file="$tmp/cg7.$mode.$n" \
      "$bin/async_cycles" "$mode" "$n" >/dev/null 2>&1
    ir[p7$mode.$n]=$(awk '/^totals:|^summary:/ {print $2; exit}' "$tmp/cg7.$mode.$n")
  done
  strace -c -U calls,name -o "$tmp/st7.$mode" "$bin/async_cycles" "$mode" 1000 >/dev/null
  sc[p7$mode]=$(awk '$1 ~ /^[0-9]+$/ && $2 != "total" && $1 >= 900 {printf "%s %.2f, ", $2, $1 / 1000}' "$tmp/st7.$mode" | sed 's/, $//')
done
for round in 1 2 3 4 5 6 7 8 9; do
  echo "bench: P7 round $round of 9"
  for pair in nobind rotation; do
    raw=$("$bin/async_cycles" "asio_$pair" 5000 | awk '{print $(NF-1)}')
    ours=$("$bin/async_cycles" "connpolicy_$pair" 5000 | awk '{print $(NF-1)}')
    rates[p7asio_$pair]="${rates[p7asio_$pair]:-} $raw"
    rates[p7connpolicy_$pair]="${rates[p7connpolicy_$pair]:-} $ours"
    ratios[p7$pair]="${ratios[p7$pair]:-} $(ratio "$ours" "$raw")"
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }

echo "bench: P8 Happy Eyeballs, in a network and mount namespace of its own"
if unshare -n true 2>/dev/null; then
  p8=$(unshare -n "$bin/happy_eyeballs" 9 200)
else
  p8="(skipped: unshare -n needs root)"
fi
echo "bench: R6 connects over a lossy path, in a network namespace of its own (~10 min)"
if ! unshare -n true 2>/dev/null; then
  r6="(skipped: unshare -n needs root)"
elif ! command -v nft >/dev/null; then
  r6="(skipped: nft is missing: scripts/setup.sh installs nftables)"
else
  r6=$(unshare -n "$bin/lossy_connect" 300 30)
fi
echo "bench: P4 scale, in a network namespace of its own"
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
  p4=$(unshare -n bash -c "ip link set lo up && echo '40000 40999' > /proc/sys/net/ipv4/ip_local_port_range && $bin/scale_hold 100000")
else
  p4="(skipped: unshare -n needs root and iproute2)"
fi
# P2 and the restart case: one network namespace per timestamps setting and row group, all at
# once (the default row waits for the kernel's TIME_WAIT timers: about 10 minutes).
p2_in_namespace() {  # timestamps, output file, command...
  local ts=$1 out=$2; shift 2
  unshare -n bash -c "ip link set lo up && sysctl -qw net.ipv4.tcp_timestamps=$ts && $*" >"$out" \
    2> >(sed -u "s/^/[timestamps=$ts] /" >&2)
}
restart_rows() {
  local i=0 row
  for row in connpolicy nocensus libcurl haproxy; do
    i=$((i + 1))
    echo "$bin/rotation_storm restart-a $((41000 + 100 * i)) 20 && $bin/rotation_storm restart-b $((41000 + 100 * i)) 20 $row"
  done | paste -sd';'
}
p5b_section() {
  echo "## P5b — a fleet, an outage, and a retry budget (virtual time)"
  echo
  echo "\`build/release/bench/fleet_simulation 10000 200 1 docs/p5b-fleet.svg\`: 10 000 clients each make one call"
  echo "a second (a connect with retries); the server refuses everything from 5 s to 15 s, then admits 200 attempts"
  echo "per 10 ms tick (twice the steady load). The same ExponentialRetry per call, with and without a"
  echo "RetryBudget per client (gRPC's retryThrottling arithmetic, max_tokens 10, token_ratio 0.1)."
  echo
  sed -n '3,$p' <<<"$p5b"
  echo
  echo "$(head -1 <<<"$p5b")"
  echo
  echo "![attempts per second over time, per jitter mode, without and with the budget](p5b-fleet.svg)"
  echo
  echo "Jitter (P5) spreads a herd's retries over time; it does not lower how many there are: without a"
  echo "budget every call made during the outage keeps retrying until it gets in (or meets its 20 s deadline), 7 to 10 attempts a second"
  echo "per client, and at recovery the backlog arrives at 9-14 times the steady load. The budget caps the"
  echo "outage at each client's first attempts plus 4 retries, and recovery at the steady load; the price is"
  echo "that calls made during the outage fail fast (gave_up() == GiveUp::retry_budget) instead of waiting to"
  echo "get in. AWS's SDKs make the same trade with their retry quota (a token bucket, 3 attempts by default)."
}
r6_section() {
  echo "## R6 — connects over a lossy path"
  echo
  echo "\`unshare -n build/release/bench/lossy_connect 300 30\`: in a network namespace of its own, nftables drops"
  echo "30 % of the SYNs to a loopback server's port at random (\`tcp flags & (syn | ack) == syn numgen random mod"
  echo "100 < 30 drop\` on the input hook); 300 connects one after the other per client, each closed with a reset."
  echo "The SYN counts are nftables' own counters. curl's time runs from its start to its connect (the wall time"
  echo "less curl's own time_total - time_connect), so its start-up is in it: its p50 is a connect whose first"
  echo "SYN got through. The plain connect() is bounded at 20 s by SO_SNDTIMEO."
  echo
  sed -n '3,$p' <<<"$r6"
  echo
  echo "$(head -1 <<<"$r6")"
  echo
  echo "A dropped SYN costs a plain connect() the kernel's first retransmission timeout, 1 s, and a second"
  echo "drop 2 s more (then 4 s, 8 s ...): at 30 % loss, 9 % of connects meet two drops in a row, so the p99"
  echo "is 3 s or more. A connect_timeout of a few round trips and a retry on a new socket turn each drop"
  echo "into 200 ms plus a short wait: three drops in a row (2.7 %) cost about 650 ms. curl's"
  echo "\`--connect-timeout\` bounds the wait but does not retry, so it trades the tail for failures (two"
  echo "drops within 2 s: about 9 %); its \`--retry\` waits whole seconds between tries (1 s, 2 s, 4 s ...)."
  echo "Choose connect_timeout above the path's worst round trip (a timeout shorter than the path fails"
  echo "every attempt), and bound the retries with max_attempts, a deadline or a RetryBudget."
}
p5=$("$bin/herd_simulation" 1000 50 10 1)
echo "bench: P5b fleet simulation (virtual time)"
p5b=$("$bin/fleet_simulation" 10000 200 1 docs/p5b-fleet.svg 2>/dev/null)
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
  echo "bench: P2 TIME_WAIT storms and restarts, timestamps on and off, in namespaces of their own (~10 min)"
  for ts in 1 0; do
    p2_in_namespace "$ts" "$tmp/p2.default.$ts" "$bin/rotation_storm 20 10 connpolicy" &
    p2_in_namespace "$ts" "$tmp/p2.others.$ts" "$bin/rotation_storm 20 10 reuse reset libcurl haproxy | tail -n +5; $(restart_rows)" &
  done
  echo "bench: P6 census cost, in a namespace of its own"
  p6=$(unshare -n bash -c "ip link set lo up && $bin/census_cost 20000 5000 200 300")
  wait
else
  echo "bench: P2 and P6 skipped: unshare -n needs root and iproute2"
  for ts in 1 0; do : >"$tmp/p2.default.$ts"; : >"$tmp/p2.others.$ts"; done
  p6="(skipped: unshare -n needs root and iproute2)"
fi

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.2f %%", 100 * (a - b) / b}'; }
{
  echo "# Benchmarks"
  echo
  echo "Written by \`bash scripts/bench.sh\` on $(date -u +%Y-%m-%d) — release build, one run, each figure beside its baseline."
  echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r);"
  echo "TCP timestamps $(cat /proc/sys/net/ipv4/tcp_timestamps), ephemeral range $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)."
  echo "Speeds on these shared machines are noisy; instruction and syscall counts are not."
  echo
  echo "## P1 — overhead against a hand-written loop (same syscalls, same semantics)"
  echo
  echo "Non-blocking connect with a 10 s timeout, blocking again, close; loopback; the server closes first."
  echo "Instructions: \`valgrind --tool=callgrind --toggle-collect='*run_*' build/release/bench/connect_cycles MODE N\`,"
  echo "(Ir at N=1200 − Ir at N=200) / 1000, client loop only (includes the kernel-call wrappers, not the kernel)."
  echo "Syscalls: \`strace -c -U calls,name build/release/bench/connect_cycles MODE 1000\`, per cycle."
  echo
  echo "| loop | instructions / cycle | vs hand-written | syscalls / cycle |"
  echo "|---|---|---|---|"
  for pair in nobind ephemeral rotation; do
    raw=$(per_cycle raw_$pair); ours=$(per_cycle connpolicy_$pair)
    case $pair in nobind) policy=NoBind;; ephemeral) policy=EphemeralBind;; *) policy="FixedPortRotation (16 ports) + close_reset()";; esac
    echo "| hand-written, $pair | $raw | — | ${sc[raw_$pair]} |"
    echo "| Connector<$policy, NoRetry, DefaultErrorPolicy> | $ours | $(pct "$ours" "$raw") | ${sc[connpolicy_$pair]} |"
  done
  echo
  echo "Where the Connector's extra instructions go (callgrind_annotate, per cycle, measured 2026-11-25):"
  echo "the loop, attempt and wait bodies (~300: building the BindPlan and the result, the observer and"
  echo "retry-schedule plumbing the compiler does not remove entirely), BasicSocket::close_as (~100),"
  echo "std::error_code{} constructions that call std::system_category() (~30; the destination checks are inline"
  echo "since 2026-12-02), is_in_progress and Endpoint::to_sockaddr (~20 each), and one steady_clock read for the poll deadline"
  echo "(~30). The hand-written loop converts the address once, builds no error_code and checks nothing."
  echo "FixedPortRotation adds about 650 more (measured 2026-12-02): it is a thread-safe ring shared by every copy, so"
  echo "each cycle locks its mutex twice, in plan() and when the lease returns on close (~110), draws the random pick"
  echo "among the 8 longest-rested ports (mt19937_64 and uniform_int_distribution, ~75), reads the clock once to"
  echo "see which ports are ready (~40), scans for the candidates (~70), and counts the lease's shared_ptr up and"
  echo "down; the hand-written ring is an index. Since 2026-12-02 the free ports are a list threaded through the"
  echo "slots (it was a deque: ~300 more for moving entries), and a port put back without rest costs no clock read."
  echo "Since 2026-12-03 the Connector is the blocking driver over the decision core (ConnectCore). As calls,"
  echo "the core's start/prepare/connected cost ~40 instructions a cycle more than the old loop; forced inline"
  echo "they cost nothing measurable: measured the same way in one session, commit 11222a7 (before the core)"
  echo "gave 933 / 1092 / 1640 and the core 931 / 1088 / 1635 (NoBind / EphemeralBind / rotation). Not yet done:"
  echo "caching the converted destination address (~20) and the remaining error_code constructions on success."
  echo "Since 2026-12-07 the core speaks a closed protocol (poll() a command, handle() an event) and the"
  echo "Connector is a loop over it: three polls and three Commands a connect, the attempt table (a lone"
  echo "attempt lives inline: no allocation), the core's bookkeeping of what it closes. Measured the same way"
  echo "in one session: 1233 / 1389 / 1944 before, 1481 / 1640 / 2161 after (+248 / +251 / +217)."
  echo "Since 2026-12-08 the core's seldom-used lists (racers, failures, closes, a second attempt) are one"
  echo "pointer each until used, the attempt's socket is made in its table and moved once, saturating_add is"
  echo "integer arithmetic where the units are whole ticks, and the destinations' check is inline: measured"
  echo "the same way, 1481 / 1640 / 2161 before, 1280 / 1435 / 1961 after (-201 / -205 / -200). What is left"
  echo "over the hand-written loop (~1000): the three polls and Commands (~170), the system API's wrappers"
  echo "(~170: error_code returns, to_sockaddr, the clock read that bounds a poll() resumed after a signal),"
  echo "the core's and the result's construction and destruction (~150), the socket's close bookkeeping."
  echo "The syscalls are the same; P3 shows what the difference costs in time. Target (≤ 1 %) not met yet."
  echo
  echo "## P2 — TIME_WAIT storm and restart: connpolicy, libcurl and HAProxy"
  echo
  echo "200 sequential connections over 20 local ports, the client closing first (so every used port enters"
  echo "TIME_WAIT), in network namespaces the script makes (\`unshare -n\`), once with \`net.ipv4.tcp_timestamps\` = 1"
  echo "and once with 0, all rows in this one run: \`build/release/bench/rotation_storm 20 10 ROW\`. connpolicy's rows use"
  echo "\`Connector<FixedPortRotation, ExponentialRetry{{.max_attempts = 10}}>\` (census on, DefaultErrorPolicy); bind()"
  echo "is interposed for connpolicy and libcurl; HAProxy 2.6 (TCP mode, \`server ... source 127.0.0.1:FIRST-LAST\`)"
  echo "runs under \`strace -f -e trace=bind\` and is counted on the range's ports. Restart: process A"
  echo "(\`rotation_storm restart-a FIRST 20\`) makes 20 connections over a 40-port range and exits; process B"
  echo "(\`rotation_storm restart-b FIRST 20 ROW\`) then makes 20 over the same range."
  for ts in 1 0; do
    echo
    echo "### TCP timestamps $([ $ts = 1 ] && echo on || echo off)"
    echo
    sed -n '3,$p' "$tmp/p2.default.$ts"
    cat "$tmp/p2.others.$ts"
  done
  echo
  echo "$(head -1 "$tmp/p2.default.1")"
  echo
  echo "## P3 — throughput (cycles per second; 9 rounds, each running the two loops back to back)"
  echo
  echo "\`build/release/bench/connect_cycles MODE 5000\`. Rates are medians over the rounds; the ratio is the"
  echo "median of the 9 per-round ratios (connpolicy / hand-written), with their range: on a shared 2-core"
  echo "machine single runs differ by up to ±20 %, so only a ratio well outside the range means anything."
  echo "The rotation's first connect is made before the clock starts: it takes the rotation's start census, one"
  echo "walk of every TCP socket of the host (P6), which with the tens of thousands of TIME_WAITs the earlier"
  echo "rounds leave cost up to a second and made the rotation look 20 % slower (0.785, range 0.146-0.981,"
  echo "before 2026-12-02). A process that makes few connections does pay it once."
  echo
  echo "| bind policy | hand-written | connpolicy | ratio (median) | ratios (min-max) |"
  echo "|---|---|---|---|---|"
  for pair in nobind ephemeral rotation; do
    r=$(median "${rates[raw_$pair]}"); c=$(median "${rates[connpolicy_$pair]}")
    echo "| $pair | $r | $c | $(median "${ratios[$pair]}") | $(spread "${ratios[$pair]}") |"
  done
  echo
  echo "## P7 — the Asio driver against a hand-written Asio loop"
  echo
  echo "One connect at a time on one \`io_context\` thread, loopback, the server a thread of its own. The baseline is"
  echo "what a careful Asio programmer writes: a close-on-exec non-blocking socket assigned to a \`tcp::socket\`,"
  echo "\`async_connect\` with a 10 s \`steady_timer\` beside it, close (rotation: bind the ring's next port, SO_LINGER"
  echo "{1, 0} before close). connpolicy: \`cp::asio::async_connect(executor, connector, server, handler)\` with"
  echo "\`Connector<NoBind>\` or \`Connector<FixedPortRotation (16 ports)>\` + \`close_reset()\`, chained the same way."
  echo "Instructions: \`valgrind --tool=callgrind --toggle-collect='*p7_loop*' build/release/bench/async_cycles MODE N\`,"
  echo "(Ir at N=1200 − Ir at N=200) / 1000, \`io_context::run\` included. Rates: \`async_cycles MODE 5000\`, 9 rounds as P3."
  echo
  echo "| loop | instructions / cycle | syscalls / cycle | cycles/s (median) | ratio (median, min-max) |"
  echo "|---|---|---|---|---|"
  for pair in nobind rotation; do
    for who in asio connpolicy; do
      m=${who}_$pair
      n=$(( (${ir[p7$m.1200]} - ${ir[p7$m.200]}) / 1000 ))
      if [ "$who" = asio ]; then r="—"; else r="$(median "${ratios[p7$pair]}") ($(spread "${ratios[p7$pair]}"))"; fi
      echo "| $([ "$who" = asio ] && echo "hand-written Asio, $pair" || echo "connpolicy async_connect, $pair") | $n | ${sc[p7$m]} | $(median "${rates[p7$m]}") | $r |"
    done
  done
  echo
  echo "Where the driver's extra instructions go (callgrind_annotate, per cycle, measured 2026-12-03): the"
  echo "decision core and the Connector's policies (~250, as in P1); the operation's own state, made per"
  echo "connect: a shared block with a socket and an attempt timer, each of which registers with the"
  echo "io_context's service registry under its mutex (~370; the hand-written loop reuses one socket and one"
  echo "timer for every cycle); the result's moves, expected<TcpSocket, NetError> into the handler and the"
  echo "moved-from sockets' and tickets' destructors (~300); async_compose's work guard and the composed"
  echo "handler's moves through two intermediate steps (~250). A spin lock orders a stop_token's callback and"
  echo "the attempt timer with the operation: with a std::mutex, and a retry timer made on every connect"
  echo "instead of on the first retry, the driver cost ~330 more."
  echo "The syscalls are the same but one: the hand-written loop lets Asio read SO_ERROR, as the driver does."
  echo "The closed protocol (2026-12-07) first cost a second epoll_wait a cycle (the operation waited on its"
  echo "wake timer, which the connect's handler cancelled: two scheduler turns); a lone attempt is now waited"
  echo "on directly, as before. Instructions: 6189 / 6856 before the protocol, 6468 / 7346 with it, 6323 / 7000"
  echo "with the direct wait, 6224 / 6902 with the core's and the driver's cuts of 2026-12-08 (above, and a"
  echo "failed attempt closed in its place). Most of what is left over the hand-written loop is what a"
  echo "connect per operation costs in Asio itself: a socket and a timer made each time, each looked up in"
  echo "the io_context's service registry under its mutex (~330), where the hand-written loop reuses one."
  echo
  echo "## P8 — Happy Eyeballs: time to connect when the first address black-holes"
  echo
  echo "\`unshare -n build/release/bench/happy_eyeballs 9 200\`: a name (\`dual.test\`, from the program's own"
  echo "/etc/hosts in a mount namespace) with \`::1\`, whose listener's accept queue is full (SYNs to it are"
  echo "dropped), and \`127.0.0.1\`, listening, at one port; 9 rounds, each client once per round, name lookup"
  echo "included. curl's figure is its own \`time_connect\`. Goal: the attempt delay + 5 ms."
  echo
  echo "$p8"
  echo
  echo "## P4 — scale past 64 k ports"
  echo
  echo "\`unshare -n bash -c \"ip link set lo up && echo '40000 40999' > /proc/sys/net/ipv4/ip_local_port_range && build/release/bench/scale_hold 100000\"\`"
  echo "— a namespace of its own, so the host's ports and sysctls are untouched. Memory is this process's resident"
  echo "user-space memory (client and server), not the kernel's socket buffers."
  echo
  sed -n '3,$p' <<<"$p4"
  echo
  echo "$(head -1 <<<"$p4")"
  echo
  echo "## P6 — the census's cost"
  echo
  echo "\`unshare -n bash -c \"ip link set lo up && build/release/bench/census_cost 20000 5000 200 300\"\`: a namespace holding"
  echo "tens of thousands of TCP sockets (20 000 TIME_WAIT, 5 000 established pairs, 500 TIME_WAIT inside the range),"
  echo "200 surveys of a 1000-port range by each method, and 200 look_ups of 1 and of 100 connections known by"
  echo "their four ends (closed by this process, in TIME_WAIT): answered from the kernel's socket hash, no walk."
  echo "Then what \`connpolicy doctor\` asks (every port), before and after naming each socket's owner: one pass"
  echo "over /proc/PID/fd, with 300 other processes holding 20 descriptors each beside the one holding the sockets."
  echo
  sed -n '3,$p' <<<"$p6"
  echo
  echo "$(head -1 <<<"$p6")"
  echo
  echo "## P5 — thundering herd (virtual time)"
  echo
  echo "\`build/release/bench/herd_simulation 1000 50 10 1\`"
  echo
  sed -n '3,$p' <<<"$p5"
  echo
  echo "$(head -1 <<<"$p5")"
  echo
  p5b_section
  echo
  r6_section
} >"$out"
echo "bench: wrote $out"
cat "$out"
