// name_race: connecting to a name whose IPv6 address does not answer, with a port rotation, and
// Happy Eyeballs (RFC 8305) on, tuned, and off.
//
// "dual.example" is resolved by a Resolver of this program's own (a table, as a service registry
// would answer): [::1]:P, where nothing answers (a listener whose accept queue is full drops
// SYNs, as a broken IPv6 route does), and 127.0.0.1:P, where a server listens. A racer that
// loses is closed with a reset and its port goes back to the rotation unused: 0 cooling after.
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>
#include <sys/socket.h>
import connpolicy;
import connpolicy.testing; // LoopbackServer: the peer for this demo

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Any type with this resolve() is a Resolver: a cache, a registry, a table.
struct TableResolver {
  std::vector<cp::Endpoint> v6, v4;
  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort&, cp::Family family,
                                                                std::chrono::milliseconds, std::stop_token) const {
    return family == cp::Family::ipv6 ? v6 : v4;
  }
};

// Prints each attempt as it ends: connected, failed, or (a racer still in flight when another
// won) closed unfinished, which is no failure of its own.
struct Log {
  Clock::time_point start;
  void operator()(const cp::AttemptEvent& e) const {
    const long long at = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    const std::string outcome = e.connected() ? "connected"
                                : e.abandoned ? "closed unfinished (another address won)"
                                              : e.error.message();
    std::printf("  %5lld ms  attempt %d to %-18s from %-18s %s\n", at, e.attempt, e.remote.to_string().c_str(),
                e.local ? e.local->to_string().c_str() : "(kernel)", outcome.c_str());
  }
};

// [::1]:port, listening with a full accept queue: connects to it get no answer.
struct SilentIpv6 {
  cp::Socket listener;
  std::vector<cp::Socket> queue;
  explicit SilentIpv6(std::uint16_t port) {
    cp::NativeSystem sys;
    listener = cp::Socket(sys.open_socket(cp::Family::ipv6, false).value());
    if (sys.bind(listener.native_handle(), cp::Endpoint::loopback_v6(port)) || ::listen(listener.native_handle(), 0))
      return;
    cp::Connector<cp::NoBind> quick{{.options = {.connect_timeout = 100ms}}};
    for (int i = 0; i < 8; ++i)
      if (auto s = quick.connect(cp::Endpoint::loopback_v6(port))) queue.push_back(std::move(*s));
  }
};

}  // namespace

int main() {
  cp::LoopbackServer server;
  const std::uint16_t port = server.endpoint().port();
  SilentIpv6 silent(port);
  if (silent.queue.empty()) return std::puts("name_race: this host has no IPv6 loopback to stand in for"), 0;
  const TableResolver table{{cp::Endpoint::loopback_v6(port)}, {cp::Endpoint::loopback_v4(port)}};
  const cp::HostPort name = *cp::HostPort::from("dual.example", port);

  const std::initializer_list<std::pair<const char*, cp::ConnectorOptions>> runs{
      {"Happy Eyeballs on (attempt_delay 250 ms, the default)", {.connect_timeout = 2s}},
      {"tuned: attempt_delay 100 ms", {.connect_timeout = 2s, .attempt_delay = 100ms}},
      {"off: attempt_delay 0, one address after the other", {.connect_timeout = 2s, .attempt_delay = 0ms}}};
  for (const auto& [label, options] : runs) {
    std::printf("%s, to %s:\n", label, name.to_string().c_str());
    using Client = cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, cp::NativeSystem, Log>;
    Client client{{.bind = cp::FixedPortRotation{40100, 40109}, .options = options, .observer = Log{Clock::now()}}};
    auto socket = client.connect(name, table);
    if (!socket) return std::printf("  failed: %s\n", socket.error().message().c_str()), 1;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - client.observer().start);
    std::printf("  => over %s in %lld ms\n", socket->remote_endpoint().value().is_v4() ? "IPv4" : "IPv6",
                static_cast<long long>(took.count()));
    socket->close_reset();  // the port comes back at once
    const auto ports = client.bind_policy().snapshot();
    std::printf("  rotation afterwards: %zu in use, %zu cooling\n", ports.in_use, ports.cooling);
  }
}
