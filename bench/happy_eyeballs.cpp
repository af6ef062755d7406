// P8: time to connect to a name whose first address black-holes, side by side in one run:
// connpolicy's blocking Connector and Asio driver racing (Happy Eyeballs), curl racing (its
// --happy-eyeballs-timeout-ms), and one address after the other (what Asio's connect algorithm
// does). "dual.test" is ::1 (a listener whose accept queue is full: SYNs to it are dropped) and
// 127.0.0.1 (listening), both at one port, from this process's own /etc/hosts.
//
//   unshare -n happy_eyeballs ROUNDS [DELAY_MS]     (DELAY_MS: the attempt delay; 200, curl's default)
//
// It needs a network namespace whose only interface is loopback (no lookup leaves the host) and
// the right to make a mount namespace (for its /etc/hosts). Prints a Markdown table: per client,
// the median, min and max time to connect over ROUNDS rounds.
#include <asio.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>
#include "netns.hpp"
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "black_hole.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Row {
  std::string client;
  std::vector<double> times;  // ms, one per round that connected
  int failed = 0;
};

double blocking(const cp::HostPort& name, std::chrono::milliseconds delay,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  cp::Connector<cp::EphemeralBind> client{
      {.bind = cp::EphemeralBind{}, .options = {.connect_timeout = timeout, .attempt_delay = delay}}};
  const auto start = Clock::now();
  auto s = client.connect(name);
  const auto took = Clock::now() - start;
  if (!s) return -1;
  s->close_reset();
  return ms(took);
}

double with_asio(const cp::HostPort& name, std::chrono::milliseconds delay) {
  cp::Connector<cp::EphemeralBind> client{
      {.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 5s, .attempt_delay = delay}}};
  asio::io_context io;
  std::optional<cp::expected<cp::asio::TcpSocket, cp::NetError>> got;
  const auto start = Clock::now();
  Clock::time_point end{};
  cp::asio::async_connect(io.get_executor(), client, name, [&](auto r) {
    end = Clock::now();
    got.emplace(std::move(r));
  });
  io.run_for(10s);
  if (!got || !*got) return -1;
  (*got)->close_reset();
  return ms(end - start);
}

std::string curl_version() {
  FILE* out = ::popen("curl --version", "r");
  if (!out) return "?";
  char word[64] = "?";
  const bool read = std::fscanf(out, "%*s %63s", word) == 1;
  ::pclose(out);
  return read ? word : "?";
}

// curl's own time_connect (name lookup included, as ours), given a second in all.
double curl(std::uint16_t port) {
  const std::string command =
      "curl -s -o /dev/null --connect-timeout 5 --max-time 1 -w '%{time_connect}' http://dual.test:" +
      std::to_string(port) + "/";
  FILE* out = ::popen(command.c_str(), "r");
  if (!out) return -1;
  double seconds = 0;
  const bool read = std::fscanf(out, "%lf", &seconds) == 1;
  ::pclose(out);
  return read && seconds > 0 ? seconds * 1000 : -1;
}

void print(const std::vector<Row>& rows, int rounds) {
  std::printf("| client | connected | median ms | min ms | max ms |\n|---|---|---|---|---|\n");
  for (Row r : rows) {
    std::ranges::sort(r.times);
    if (r.times.empty()) {
      std::printf("| %s | 0 of %d | - | - | - |\n", r.client.c_str(), rounds);
      continue;
    }
    std::printf("| %s | %zu of %d | %.1f | %.1f | %.1f |\n", r.client.c_str(), r.times.size(), rounds,
                r.times[r.times.size() / 2], r.times.front(), r.times.back());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  const auto delay = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 200);
  if (!test_support::in_loopback_only_namespace() ||
      !test_support::with_own_hosts_file("::1 dual.test\n127.0.0.1 dual.test\n")) {
    std::fprintf(stderr, "happy_eyeballs: run me as root under `unshare -n` (loopback only, my own /etc/hosts)\n");
    return 2;
  }
  cp::LoopbackServer server;
  const std::uint16_t port = server.endpoint().port();
  auto hole = test_support::black_hole(cp::Family::ipv6, port);
  if (hole.fillers.empty()) {
    std::fprintf(stderr, "happy_eyeballs: could not black-hole [::1]:%u\n", static_cast<unsigned>(port));
    return 2;
  }
  const cp::HostPort name = *cp::HostPort::from("dual.test", port);
  const std::string d = std::to_string(delay.count()) + " ms";
  std::vector<Row> rows{{"connpolicy Connector, attempt_delay " + d, {}},
                        {"connpolicy asio::async_connect, attempt_delay " + d, {}},
                        {"curl " + curl_version() + ", --happy-eyeballs-timeout-ms 200 (its default)", {}},
                        {"one address after the other, connect_timeout 1000 ms", {}}};
  for (int i = 0; i < rounds; ++i) {
    std::fprintf(stderr, "happy_eyeballs: round %d of %d\n", i + 1, rounds);
    const double t[] = {blocking(name, delay), with_asio(name, delay), curl(port), blocking(name, 0ms, 1000ms)};
    for (std::size_t k = 0; k < rows.size(); ++k)
      if (t[k] >= 0) rows[k].times.push_back(t[k]);
  }
  print(rows, rounds);
}
