// P7: asynchronous connect/close cycles on loopback, one at a time on one io_context thread, by
// connpolicy's Asio driver and by a hand-written Asio loop that makes the same syscalls for the
// same semantics (a close-on-exec non-blocking socket, connect, wait for writability on the
// reactor with a 10 s timer beside it, SO_ERROR, close). The client loop runs in a function named
// p7_loop_* (not run_*: Asio's own do_run_one would toggle callgrind off again), so
// `callgrind --toggle-collect='*p7_loop*'` measures it (io_context::run included) and
// `strace -c` (main thread only) counts its syscalls; the server is a thread.
//
//   async_cycles MODE CYCLES     MODE: asio_nobind | connpolicy_nobind | asio_rotation | connpolicy_rotation
//                                      (rotation: 16 ports, reset close)
// Prints "MODE CYCLES cycles in S s: R cycles/s".
#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <sys/socket.h>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;

namespace cp = connpolicy;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// The baseline: one cycle as a careful Asio programmer writes it, chained to the next.
struct HandWritten : std::enable_shared_from_this<HandWritten> {
  HandWritten(asio::io_context& io, tcp::endpoint to, int cycles, const cp::PortRange* ports)
      : socket(io), timer(io), to(to), left(cycles), ports(ports) {}

  void next() {
    if (left-- == 0) return;
    std::error_code ec;
    // SOCK_CLOEXEC | SOCK_NONBLOCK in one call, as the library does (asio's open() would need an
    // extra ioctl for non-blocking mode at connect).
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    socket.assign(tcp::v4(), fd, ec);
    if (ports) {
      socket.bind(tcp::endpoint(tcp::v4(), static_cast<std::uint16_t>(ports->first() + turn++ % ports->size())), ec);
      if (ec) return fail();
    }
    timer.expires_after(10s);
    timer.async_wait([self = shared_from_this()](std::error_code e) {
      if (!e) self->socket.cancel();
    });
    socket.async_connect(to, [self = shared_from_this()](std::error_code e) { self->connected(e); });
  }
  void connected(std::error_code e) {
    timer.cancel();
    if (!e) ++made;
    std::error_code ignored;
    if (ports) socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
    next();
  }
  void fail() {
    std::error_code ignored;
    socket.close(ignored);
    next();
  }

  tcp::socket socket;
  asio::steady_timer timer;
  tcp::endpoint to;
  int left, made = 0;
  std::size_t turn = 0;
  const cp::PortRange* ports;
};

[[gnu::noinline]] int p7_loop_asio(asio::io_context& io, const cp::Endpoint& server, int cycles,
                                   const cp::PortRange* ports) {
  auto loop = std::make_shared<HandWritten>(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), server.port()),
                                            cycles, ports);
  loop->next();
  io.run();
  return loop->made;
}

template <class Client>
struct Driven {
  void next() {
    if (left-- == 0) return;
    cp::asio::async_connect(io->get_executor(), *client, server,
                            [this](cp::expected<cp::asio::TcpSocket, cp::NetError> s) {
                              if (s) {
                                ++made;
                                if (reset)
                                  s->close_reset();
                                else
                                  s->close();
                              }
                              next();
                            });
  }
  asio::io_context* io;
  Client* client;
  cp::Endpoint server;
  int left, made = 0;
  bool reset;
};

template <class Client>
[[gnu::noinline]] int p7_loop_connpolicy(asio::io_context& io, Client& client, const cp::Endpoint& server, int cycles,
                                         bool reset) {
  Driven<Client> loop{&io, &client, server, cycles, 0, reset};
  loop.next();
  io.run();
  return loop.made;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: async_cycles {asio,connpolicy}_{nobind,rotation} CYCLES\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int cycles = std::atoi(argv[2]);
  const bool rotation = mode.ends_with("_rotation");
  cp::LoopbackServer server(rotation ? cp::LoopbackServer::Mode::client_closes_first
                                     : cp::LoopbackServer::Mode::server_closes_first);
  const auto ports = cp::find_free_port_range(16).value();
  asio::io_context io(1);
  cp::Connector<cp::NoBind> nobind;
  cp::Connector<cp::FixedPortRotation> rotating{cp::FixedPortRotation{ports}};
  if (mode == "connpolicy_rotation") {  // the first plan's census, before the clock starts (see P1)
    auto first = rotating.connect(server.endpoint());
    if (first) first->close_reset();
  }
  const auto start = std::chrono::steady_clock::now();
  int made = -1;
  if (mode == "asio_nobind")
    made = p7_loop_asio(io, server.endpoint(), cycles, nullptr);
  else if (mode == "asio_rotation")
    made = p7_loop_asio(io, server.endpoint(), cycles, &ports);
  else if (mode == "connpolicy_nobind")
    made = p7_loop_connpolicy(io, nobind, server.endpoint(), cycles, false);
  else if (mode == "connpolicy_rotation")
    made = p7_loop_connpolicy(io, rotating, server.endpoint(), cycles, true);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (made < 0) {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  std::printf("%s %d cycles (%d made) in %.3f s: %.0f cycles/s\n", mode.c_str(), cycles, made, s, made / s);
  return made == cycles ? 0 : 1;
}
