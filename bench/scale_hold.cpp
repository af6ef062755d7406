// P4, scale: how many connections one client can hold open to ONE server, by bind policy:
// bind(:0) without IP_BIND_ADDRESS_NO_PORT, EphemeralBind (with it), and a SourceAddressPool of
// 4 loopback addresses. scripts/bench.sh runs it in a network namespace of its own (unshare -n)
// with a 1000-port ephemeral range, so the limits show quickly and the host is untouched.
//
//   scale_hold [cap per variant = 100000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <sys/resource.h>
#include <unistd.h>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {

// The plain bind(ip:0): the port is chosen at bind(), before the destination is known.
struct PortZeroWithoutNoPort {
  static constexpr bool can_rebind = false;
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint&) const {
    cp::BindPlan plan;
    plan.local = cp::Endpoint::loopback_v4(0);
    return plan;
  }
  void failed(const cp::BindPlan&, const cp::NetError&) const noexcept {}
};

double resident_mib() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

template <class Bind>
void hold(const char* name, Bind bind, cp::LoopbackServer& server, long cap) {
  cp::Connector<Bind> client{std::move(bind)};
  std::vector<cp::Socket> held;
  std::string stopped = "cap reached";
  const double rss_before = resident_mib();
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<long>(held.size()) < cap) {
    auto s = client.connect(server.endpoint());
    if (!s) {
      stopped =
          std::string(cp::describe(s.error().condition())) + " at " + std::string(cp::to_string(s.error().step()));
      break;
    }
    held.push_back(std::move(*s));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rss = resident_mib() - rss_before;
  std::printf("| %s | %zu | %s | %.2f | %.1f |\n", name, held.size(), stopped.c_str(), seconds, rss);
  const int closed = server.closed();
  for (auto& s : held) s.close_reset();  // frees the ports at once (no TIME_WAIT) for the next row
  server.wait_closed(closed + static_cast<int>(held.size()), 10s);
}

}  // namespace

int main(int argc, char** argv) {
  const long cap = argc > 1 ? std::atol(argv[1]) : 100000;
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;  // both ends of every connection live in this process
  ::setrlimit(RLIMIT_NOFILE, &limit);
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  long low = 0, high = 0;
  range >> low >> high;
  cp::LoopbackServer server;
  std::printf("P4 scale: connections held open to one server (%s); ephemeral range %ld-%ld (%ld ports); "
              "descriptor limit %llu; cap %ld per row\n\n",
              server.endpoint().to_string().c_str(), low, high, high - low + 1,
              static_cast<unsigned long long>(limit.rlim_cur), cap);
  std::printf("| bind policy | held | stopped by | time s | memory MiB (client + server) |\n|---|---|---|---|---|\n");
  hold("bind(127.0.0.1:0) without IP_BIND_ADDRESS_NO_PORT", PortZeroWithoutNoPort{}, server, cap);
  hold("EphemeralBind (127.0.0.1, IP_BIND_ADDRESS_NO_PORT)", cp::EphemeralBind{cp::Endpoint::loopback_v4(0)}, server,
       cap);
  std::vector<cp::Endpoint> four;
  for (std::uint8_t i = 1; i <= 4; ++i) four.push_back(cp::Endpoint::ipv4({127, 0, 0, i}, 0));
  hold("SourceAddressPool of 4 (127.0.0.1-4)", cp::SourceAddressPool::make(four).value(), server, cap);
  return 0;
}
