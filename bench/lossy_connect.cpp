// R6: connecting over a lossy path. In this process's own network namespace, nftables drops a
// share of the SYNs to one loopback port at random (30 % unless told); N connects one after the
// other to a server there, per client, side by side in one run:
//   - connpolicy with a short per-attempt timeout and a retry (settings in the table),
//   - a plain blocking connect() left to the kernel's SYN retransmission (1 s, then 2 s, 4 s ...),
//   - curl with --connect-timeout, once alone and once with its --retry.
//
//   unshare -n lossy_connect [N=300] [DROP_PERCENT=30] [all|connpolicy]
//
// It needs root in a namespace whose only interface is loopback, and `nft` (nftables); without
// them it exits 77 (ctest: skipped). Prints a Markdown table: connected, attempts or SYNs sent,
// SYNs dropped, p50 / p99 / max time to connect; then checks that no descriptor and no port the
// rotation lent out was lost (exit 1 if one was).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "netns.hpp"
import connpolicy;
import connpolicy.testing;
#include "events.hpp"
#include "fd_count.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Two rules on the input hook (which loopback traffic passes): count every SYN to `port`, then
// drop `percent` of them at random. Returns false when nft is missing or refuses.
bool drop_syns(std::uint16_t port, int percent) {
  const std::string match = "tcp dport " + std::to_string(port) + " tcp flags & (syn | ack) == syn";
  const std::string rules = "table inet connpolicy_r6 {\n chain in {\n  type filter hook input priority 0;\n  " +
                            match + " counter\n  " + match + " numgen random mod 100 < " + std::to_string(percent) +
                            " counter drop\n }\n}\n";
  FILE* nft = ::popen("nft -f - 2>/dev/null", "w");
  if (!nft) return false;
  std::fputs(rules.c_str(), nft);
  return ::pclose(nft) == 0;
}

// The two counters' packets so far: {SYNs seen, SYNs dropped}.
struct Syns {
  long seen = 0, dropped = 0;
};
Syns syn_counters() {
  FILE* out = ::popen("nft list chain inet connpolicy_r6 in 2>/dev/null", "r");
  if (!out) return {};
  std::vector<long> packets;
  char line[512];
  while (std::fgets(line, sizeof line, out)) {
    const char* at = std::strstr(line, "counter packets ");
    if (at) packets.push_back(std::atol(at + std::strlen("counter packets ")));
  }
  ::pclose(out);
  return packets.size() == 2 ? Syns{packets[0], packets[1]} : Syns{};
}

using CountAttempts = test_support::CountEvents<std::atomic<long>>;
using Client =
    cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy, cp::NativeSystem, CountAttempts>;
constexpr auto per_attempt = 200ms;
constexpr cp::ExponentialOptions retry_options{
    .initial = 10ms, .multiplier = 2.0, .max_delay = 100ms, .max_attempts = 10, .jitter = cp::Jitter::full, .seed = 6};

// One connect; its time in ms, or -1 when it failed.
double with_connpolicy(Client& client, const cp::Endpoint& to) {
  const auto start = Clock::now();
  auto s = client.connect(to);
  const auto took = Clock::now() - start;
  if (!s) return -1;
  s->close_reset();  // no TIME_WAIT: the rotation's 64 ports would otherwise pace the run
  return ms(took);
}

// What most code does: one blocking connect(), the kernel retransmitting the SYN. SO_SNDTIMEO
// bounds it at 20 s (past the 1 + 2 + 4 + 8 s retransmissions), so the run stops by itself.
double plain_connect(const cp::Endpoint& to) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const timeval limit{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  const linger reset{1, 0};  // closed as connpolicy's row closes: a reset, no TIME_WAIT
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  sockaddr_storage address{};
  const auto length = to.to_sockaddr(address);
  const auto start = Clock::now();
  const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), static_cast<socklen_t>(length));
  const auto took = Clock::now() - start;
  ::close(fd);
  return r == 0 ? ms(took) : -1;
}

// curl's time from its start to its connect: the run's wall time less what came after the connect
// (time_total - time_connect, curl's own figures). So it includes curl's start-up (tens of ms: its
// p50 is a connect whose first SYN got through) and, with --retry, every earlier try and wait.
// Connected when curl says it connected (time_connect > 0), whatever the server did next (it
// closes at once: curl ends with "empty reply" or "connection reset").
double curl(std::uint16_t port, const std::string& options) {
  const std::string command = "curl -s -o /dev/null " + options + " --max-time 30 -w '%{time_connect} %{time_total}' " +
                              "http://127.0.0.1:" + std::to_string(port) + "/ 2>/dev/null";
  const auto start = Clock::now();
  FILE* out = ::popen(command.c_str(), "r");
  if (!out) return -1;
  double connect_s = 0, total_s = 0;
  const bool read = std::fscanf(out, "%lf %lf", &connect_s, &total_s) == 2;
  ::pclose(out);
  const auto took = Clock::now() - start;
  return read && connect_s > 0 ? ms(took) - (total_s - connect_s) * 1000 : -1;
}

struct Row {
  std::string client;
  std::function<double()> connect;
  std::function<long()> attempts;  // connpolicy's count; empty: SYNs sent stand for it
  std::vector<double> times{};     // of the connects that were made
  Syns syns{};
  long attempts_made = 0;
};

double percentile(const std::vector<double>& sorted, double p) {
  const auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size()))) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

void run(Row& row, int n) {
  const Syns before = syn_counters();
  const long attempts_before = row.attempts ? row.attempts() : 0;
  for (int i = 0; i < n; ++i) {
    if (i % 50 == 0) std::fprintf(stderr, "lossy_connect: %s: %d of %d\n", row.client.c_str(), i, n);
    if (const double t = row.connect(); t >= 0) row.times.push_back(t);  // connected; the rest failed
  }
  const Syns after = syn_counters();
  row.syns = {after.seen - before.seen, after.dropped - before.dropped};
  row.attempts_made = row.attempts ? row.attempts() - attempts_before : -1;
  std::ranges::sort(row.times);
}

void print(const std::vector<Row>& rows, int n, int percent) {
  std::printf("%d connects per client, %d %% of SYNs dropped\n\n", n, percent);
  std::printf("| client | connected | attempts | SYNs sent (dropped) | p50 ms | p99 ms | max ms |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    const std::string attempts = r.attempts_made >= 0 ? std::to_string(r.attempts_made) : "-";
    std::printf("| %s | %zu of %d | %s | %ld (%ld) |", r.client.c_str(), r.times.size(), n, attempts.c_str(),
                r.syns.seen, r.syns.dropped);
    if (r.times.empty())
      std::printf(" - | - | - |\n");
    else
      std::printf(" %.2f | %.2f | %.2f |\n", percentile(r.times, 0.5), percentile(r.times, 0.99), r.times.back());
  }
}

// The rows, one after the other, against one server; 77 when the drop rule cannot be set, 1 when
// the rotation did not get every port back.
int run_all(int n, int percent, bool only_connpolicy) {
  cp::LoopbackServer server(cp::LoopbackServer::Mode::server_closes_first);
  const cp::Endpoint to = server.endpoint();
  if (!drop_syns(to.port(), percent)) {
    std::fprintf(stderr, "lossy_connect: nft could not add the drop rule (is nftables installed? scripts/setup.sh)\n");
    return 77;
  }
  std::atomic<long> attempts{0};
  Client client{{.bind = cp::FixedPortRotation{cp::PortRange{41000, 41063}, {.seed = 6}},
                 .retry = cp::ExponentialRetry{retry_options},
                 .options = {.connect_timeout = per_attempt},
                 .observer = CountAttempts{&attempts}}};
  std::vector<Row> rows;
  rows.push_back({"connpolicy: FixedPortRotation 41000-41063, connect_timeout 200 ms, ExponentialRetry 10 ms "
                  "x2 up to 100 ms, full jitter, 10 attempts",
                  [&] { return with_connpolicy(client, to); }, [&] { return attempts.load(); }});
  if (!only_connpolicy) {
    rows.push_back(
        {"plain blocking connect() (the kernel retransmits the SYN)", [&] { return plain_connect(to); }, {}});
    rows.push_back({"curl --connect-timeout 2", [&] { return curl(to.port(), "--connect-timeout 2"); }, {}});
    rows.push_back({"curl --connect-timeout 0.2 --retry 5 (waits 1 s, 2 s, ... between tries)",
                    [&] { return curl(to.port(), "--connect-timeout 0.2 --retry 5"); },
                    {}});
  }
  for (Row& row : rows) run(row, n);
  print(rows, n, percent);
  const auto lent = client.bind_policy().snapshot().in_use;
  std::printf("\nrotation ports lent out after the run: %zu\n", static_cast<std::size_t>(lent));
  return lent == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 300;
  const int percent = argc > 2 ? std::clamp(std::atoi(argv[2]), 0, 100) : 30;
  const bool only_connpolicy = argc > 3 && std::string(argv[3]) == "connpolicy";
  if (!test_support::in_loopback_only_namespace()) {
    std::fprintf(stderr, "lossy_connect: run me as root under `unshare -n` (a namespace with loopback only)\n");
    return 77;
  }
  const auto fds = test_support::open_fd_count();
  if (const int status = run_all(n, percent, only_connpolicy); status != 0) return status;
  const auto fds_after = test_support::open_fd_count();  // the server's too: it is gone now
  std::printf("descriptors: %zu before, %zu after\n", fds, fds_after);
  if (fds_after != fds) return 1;
  std::printf("every descriptor and every port of the rotation came back\n");
  return 0;
}
