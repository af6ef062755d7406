// P1 and P3: connect/close cycles on loopback, by connpolicy's Connector and by a hand-written
// loop making the same syscalls for the same semantics (non-blocking connect, a 10 s timeout by
// poll, SO_ERROR, blocking again, close). The client loop runs on the main thread in a function
// named run_*, so `strace -c` (main thread only) and `callgrind --toggle-collect='*run_*'` measure
// it alone; the server is a thread.
//
//   connect_cycles MODE CYCLES      MODE: raw_nobind | connpolicy_nobind | raw_ephemeral | connpolicy_ephemeral
//                                         | raw_rotation | connpolicy_rotation   (16 ports, reset close)
// Prints "MODE CYCLES cycles in S s: R cycles/s".
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;

namespace {

#ifndef IP_BIND_ADDRESS_NO_PORT
constexpr int IP_BIND_ADDRESS_NO_PORT = 24;
#endif

// What the hand-written loop does before and after the connect, per mode.
struct RawPlan {
  bool bind = false;       // bind() a local address first
  bool no_port = false;    // IP_BIND_ADDRESS_NO_PORT before bind (EphemeralBind's way)
  std::uint16_t port = 0;  // the local port to bind (0: the kernel's choice)
  bool reset = false;      // SO_LINGER {1,0} before close (Socket::close_reset()'s way)
};

// The baseline: what a careful programmer writes by hand, for one cycle.
[[gnu::noinline]] bool raw_cycle(const sockaddr_in& server, const RawPlan& plan) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
  if (fd < 0) return false;
  bool ok = true;
  if (plan.bind) {
    const int on = 1;
    if (plan.no_port) ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(plan.port);
    ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) == 0;
  }
  if (ok && ::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) {
    ok = errno == EINPROGRESS;
    if (ok) {
      pollfd p{fd, POLLOUT, 0};
      int error = 0;
      socklen_t length = sizeof error;
      ok = ::poll(&p, 1, 10000) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
    }
  }
  int off = 0;
  if (ok) ok = ::ioctl(fd, FIONBIO, &off) == 0;
  if (plan.reset) {
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }
  ::close(fd);
  return ok;
}

// kind: 0 no bind, 1 ephemeral (bind port 0 with NO_PORT), 2 rotation (the next port of a ring,
// reset close), as NoBind, EphemeralBind and FixedPortRotation + close_reset() do.
[[gnu::noinline]] int run_raw(const cp::Endpoint& server, int cycles, int kind, const cp::PortRange& ports) {
  sockaddr_storage storage;
  server.to_sockaddr(storage);
  sockaddr_in in;
  std::memcpy(&in, &storage, sizeof in);
  RawPlan plan{.bind = kind != 0, .no_port = kind == 1, .reset = kind == 2};
  int made = 0;
  for (int i = 0; i < cycles; ++i) {
    if (kind == 2) plan.port = static_cast<std::uint16_t>(ports.first() + i % static_cast<int>(ports.size()));
    made += raw_cycle(in, plan) ? 1 : 0;
  }
  return made;
}

using RotationClient = cp::Connector<cp::FixedPortRotation>;

[[gnu::noinline]] int run_connpolicy_rotation(const cp::Endpoint& server, int cycles, RotationClient& client) {
  int made = 0;
  for (int i = 0; i < cycles; ++i) {
    auto s = client.connect(server);
    if (!s) continue;
    ++made;
    s->close_reset();
  }
  return made;
}

template <class Bind>
[[gnu::noinline]] int run_connpolicy(const cp::Endpoint& server, int cycles) {
  cp::Connector<Bind> client;
  int made = 0;
  for (int i = 0; i < cycles; ++i) made += client.connect(server) ? 1 : 0;  // the Socket closes at once
  return made;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: connect_cycles {raw,connpolicy}_{nobind,ephemeral,rotation} CYCLES\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int cycles = std::atoi(argv[2]);
  const bool rotation = mode.ends_with("_rotation");
  // Rotation modes reset their connections, so the server reads until the reset; the others let
  // the server close first, so no TIME_WAIT piles up on the client's side.
  cp::LoopbackServer server(rotation ? cp::LoopbackServer::Mode::client_closes_first
                                     : cp::LoopbackServer::Mode::server_closes_first);
  const auto ports = cp::find_free_port_range(16).value();
  // A new rotation's first plan() takes a census of its ports: one walk of every TCP socket of the
  // host, milliseconds to a second on a host full of TIME_WAITs (P6; earlier rounds leave tens of
  // thousands). This measures the steady state, so that connect is made before the clock starts.
  RotationClient rotation_client{cp::FixedPortRotation{ports}};
  if (mode == "connpolicy_rotation") {
    auto first = rotation_client.connect(server.endpoint());
    if (first) first->close_reset();
  }
  const auto start = std::chrono::steady_clock::now();
  int made = -1;
  if (mode == "raw_nobind")
    made = run_raw(server.endpoint(), cycles, 0, ports);
  else if (mode == "raw_ephemeral")
    made = run_raw(server.endpoint(), cycles, 1, ports);
  else if (mode == "connpolicy_nobind")
    made = run_connpolicy<cp::NoBind>(server.endpoint(), cycles);
  else if (mode == "connpolicy_ephemeral")
    made = run_connpolicy<cp::EphemeralBind>(server.endpoint(), cycles);
  else if (mode == "raw_rotation")
    made = run_raw(server.endpoint(), cycles, 2, ports);
  else if (mode == "connpolicy_rotation")
    made = run_connpolicy_rotation(server.endpoint(), cycles, rotation_client);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (made < 0) {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  std::printf("%s %d cycles (%d made) in %.3f s: %.0f cycles/s\n", mode.c_str(), cycles, made, s, made / s);
  return made == cycles ? 0 : 1;
}
