// Finding a free local port: the seed's getAvaliablePort, and a race-free form of it.
module;
#include <cstdint>
#include <utility>
export module connpolicy.core:ports;
import :error;
import :endpoint;
import :net_error;
import :system;
import :socket;

namespace connpolicy::detail {
template <SystemApi System>
expected<BasicSocket<System>, NetError> bind_socket(const Endpoint& local, System& system) {
  auto h = system.open_socket(local.family(), false);
  if (!h) return unexpected(NetError(Step::socket, h.error()).with_local(local));
  BasicSocket<System> socket(*h, system);
  if (auto ec = system.bind(socket.native_handle(), local))
    return unexpected(NetError(Step::bind, ec).with_local(local));  // socket closes itself
  return socket;
}
}  // namespace connpolicy::detail

export namespace connpolicy {

// The seed's helper: bind port 0 on `local`'s address, read the port the kernel chose, close.
//
// Racy by nature: once the socket is closed, anybody (another process, or the kernel handing
// out an ephemeral port for a connect) can take the port before you bind it. Use it for logs
// and for tests that tolerate a retry; use PortReservation when the port must stay yours.
template <SystemApi System = NativeSystem>
expected<std::uint16_t, NetError> find_free_port(const Endpoint& local = Endpoint::any_v4(),
                                                 System system = System{}) {
  auto socket = detail::bind_socket(local.with_port(0), system);
  if (!socket) return unexpected(std::move(socket).error());
  auto bound = system.local_endpoint(socket->native_handle());
  if (!bound) return unexpected(NetError(Step::bind, bound.error()).with_local(local));
  return bound->port();
}

// A port that stays yours: the bound socket is kept open, so no other bind (and no ephemeral
// connect) can take the port until you release() it, or take_socket() and use it yourself, e.g.
// to connect from exactly that port. Moving the reservation moves the hold.
template <SystemApi System = NativeSystem>
class BasicPortReservation {
 public:
  // Binds `local` (port 0: the kernel chooses). No SO_REUSEADDR: the point is exclusivity.
  static expected<BasicPortReservation, NetError> reserve(const Endpoint& local = Endpoint::any_v4(),
                                                          System system = System{}) {
    auto socket = detail::bind_socket(local, system);
    if (!socket) return unexpected(std::move(socket).error());
    auto bound = system.local_endpoint(socket->native_handle());
    if (!bound) return unexpected(NetError(Step::bind, bound.error()).with_local(local));
    return BasicPortReservation(std::move(*socket), *bound);
  }

  std::uint16_t port() const noexcept { return endpoint_.port(); }
  const Endpoint& endpoint() const noexcept { return endpoint_; }
  bool holds() const noexcept { return socket_.is_open(); }

  // Lets the port go: others may bind it from now on.
  void release() noexcept { socket_.close(); }
  // Hands over the bound socket (to connect from this port); the reservation holds nothing after.
  BasicSocket<System> take_socket() noexcept { return std::move(socket_); }

 private:
  BasicPortReservation(BasicSocket<System> socket, const Endpoint& endpoint) noexcept
      : socket_(std::move(socket)), endpoint_(endpoint) {}
  BasicSocket<System> socket_;
  Endpoint endpoint_;
};

using PortReservation = BasicPortReservation<NativeSystem>;

}  // namespace connpolicy
