// A listener that drops SYNs: its accept queue is full, so a connect to it stays pending until
// its timeout. Include after `import connpolicy;`.
#pragma once
#include <chrono>
#include <cstdint>
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
  BlackHole hole{connpolicy::Socket(sys.open_socket(family, false).value()), {}, {}};
  const auto here = family == connpolicy::Family::ipv4 ? connpolicy::Endpoint::loopback_v4(port)
                                                       : connpolicy::Endpoint::loopback_v6(port);
  if (sys.bind(hole.listener.native_handle(), here)) return hole;
  if (::listen(static_cast<decltype(::socket(0, 0, 0))>(hole.listener.native_handle()), 0) != 0) return hole;
  hole.endpoint = hole.listener.local_endpoint().value();
  connpolicy::Connector<connpolicy::NoBind> quick{{}, {}, {}, {}, {.connect_timeout = 100ms}};
  for (int i = 0; i < 8; ++i)  // bounded: the queue holds one or two
    if (auto s = quick.connect(hole.endpoint)) hole.fillers.push_back(std::move(*s));
  return hole;
}

}  // namespace test_support
