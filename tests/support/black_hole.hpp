// Listeners for tests of what a connect meets: one that drops SYNs (its accept queue is full, so a
// connect to it stays pending until its timeout), one that never accepts (connects complete in the
// kernel), and a port where nothing listens. Include after `import connpolicy;`.
#pragma once
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>
#ifdef _WIN32
#include <winsock2.h>
#else
#include <sys/socket.h>
#endif

namespace test_support {

struct BlackHole {
  connpolicy::Socket listener;
  std::vector<connpolicy::Socket> fillers;  // the connections that fill the queue
  connpolicy::Endpoint endpoint;
};

// A loopback listener with backlog 0, filled with connections nobody accepts. Empty fillers
// means the queue could not be filled (the caller should skip).
// `port`: that port (0: the kernel's choice).
inline BlackHole black_hole(connpolicy::Family family = connpolicy::Family::ipv4, std::uint16_t port = 0) {
  using namespace std::chrono_literals;
  connpolicy::NativeSystem sys;
  BlackHole hole{.listener = connpolicy::Socket(sys.open_socket(family, false).value())};
  const auto here = family == connpolicy::Family::ipv4 ? connpolicy::Endpoint::loopback_v4(port)
                                                       : connpolicy::Endpoint::loopback_v6(port);
  if (sys.bind(hole.listener.native_handle(), here)) return hole;
  if (::listen(static_cast<decltype(::socket(0, 0, 0))>(hole.listener.native_handle()), 0) != 0) return hole;
  hole.endpoint = hole.listener.local_endpoint().value();
  connpolicy::Connector<connpolicy::NoBind> quick{{.options = {.connect_timeout = 100ms}}};
  for (int i = 0; i < 8; ++i)  // bounded: the queue holds one or two
    if (auto s = quick.connect(hole.endpoint)) hole.fillers.push_back(std::move(*s));
  return hole;
}

// A listener on [::1]:0 that never accepts: connects to it complete in the kernel (port 0: none
// could be made).
struct Ipv6Listener {
  connpolicy::Socket socket;
  std::uint16_t port = 0;
};
inline Ipv6Listener listen_on_ipv6_loopback() {
  connpolicy::NativeSystem sys;
  Ipv6Listener l{connpolicy::Socket(sys.open_socket(connpolicy::Family::ipv6, false).value()), 0};
  if (sys.bind(l.socket.native_handle(), connpolicy::Endpoint::loopback_v6(0))) return l;
  if (::listen(static_cast<decltype(::socket(0, 0, 0))>(l.socket.native_handle()), 16) != 0) return l;
  l.port = l.socket.local_endpoint().value().port();
  return l;
}

// A loopback port nothing listens on (bound a moment, then closed): a connect there is refused.
inline connpolicy::Endpoint refusing_endpoint() {
  connpolicy::NativeSystem sys;
  connpolicy::Socket probe(sys.open_socket(connpolicy::Family::ipv4, false).value());
  if (sys.bind(probe.native_handle(), connpolicy::Endpoint::loopback_v4(0)))
    throw std::runtime_error("no loopback port");
  return probe.local_endpoint().value();
}

}  // namespace test_support
