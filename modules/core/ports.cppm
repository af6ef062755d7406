// Finding a free local port: the seed's getAvaliablePort, and a race-free form of it.
module;
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
export module connpolicy.core:ports;
import :error;
import :endpoint;
import :net_error;
import :system;
import :socket;

namespace connpolicy::detail {
// Not constexpr on purpose: reaching one of these in a constant expression is the compile
// error, and the compiler's note names the function, i.e. the mistake.
inline void port_range_first_port_is_0_use_1_to_65535() {}
inline void port_range_last_port_is_above_65535() {}
inline void port_range_first_is_greater_than_last() {}

template <SystemApi System>
expected<BasicSocket<System>, NetError> bind_socket(const Endpoint& local, System& system) {
  auto h = system.open_socket(local.family(), false);
  if (!h) return unexpected(NetError(Step::socket, h.error()).with_local(local));
  BasicSocket<System> socket(*h, system);
#ifdef _WIN32
  // Windows: without SO_EXCLUSIVEADDRUSE another socket with SO_REUSEADDR could bind it too.
  if (auto ec = system.set_option(socket.native_handle(), SocketOption::exclusive_address, 1))
    return unexpected(NetError(Step::set_option, ec).with_local(local));
#endif
  if (auto ec = system.bind(socket.native_handle(), local))
    return unexpected(NetError(Step::bind, ec).with_local(local));  // socket closes itself
  return socket;
}
}  // namespace connpolicy::detail

export namespace connpolicy {

// A local port one can name: 1-65535 (0 means "any port": the kernel's choice, not a port).
constexpr bool is_port_number(long port) noexcept { return port >= 1 && port <= 65535; }

// A non-empty range of local ports, first..last inclusive, 1-65535.
//   PortRange{40000, 40009}        checked at compile time: {0, 10} or {10, 1} do not compile
//   PortRange::make(first, last)   checked at run time: invalid_argument says what is wrong
//   PortRange::parse("40000-40009") text from a config file or command line ("40000" = one port)
class PortRange {
 public:
  consteval PortRange(int first, int last) : first_(0), last_(0) {
    if (first < 1) detail::port_range_first_port_is_0_use_1_to_65535();
    if (!is_port_number(last)) detail::port_range_last_port_is_above_65535();
    if (first > last) detail::port_range_first_is_greater_than_last();
    first_ = static_cast<std::uint16_t>(first);
    last_ = static_cast<std::uint16_t>(last);
  }
  static expected<PortRange, NetError> make(long first, long last);
  static expected<PortRange, NetError> parse(std::string_view text);

  constexpr std::uint16_t first() const noexcept { return first_; }
  constexpr std::uint16_t last() const noexcept { return last_; }
  constexpr std::size_t size() const noexcept { return std::size_t{last_} - first_ + 1; }
  constexpr bool contains(std::uint16_t port) const noexcept { return port >= first_ && port <= last_; }
  std::string to_string() const;  // "40000-40009", or "40000" for one port

  friend constexpr bool operator==(const PortRange&, const PortRange&) noexcept = default;

 private:
  struct Checked {};
  constexpr PortRange(Checked, std::uint16_t first, std::uint16_t last) noexcept : first_(first), last_(last) {}
  std::uint16_t first_;
  std::uint16_t last_;
};

// The seed's helper: bind port 0 on `local`'s address, read the port the kernel chose, close.
//
// Racy by nature: once the socket is closed, anybody (another process, or the kernel handing
// out an ephemeral port for a connect) can take the port before you bind it. Use it for logs
// and for tests that tolerate a retry; use PortReservation when the port must stay yours.
template <SystemApi System = NativeSystem>
expected<std::uint16_t, NetError> find_free_port(const Endpoint& local = Endpoint::any_v4(), System system = System{}) {
  auto socket = detail::bind_socket(local.with_port(0), system);
  if (!socket) return unexpected(std::move(socket).error());
  auto bound = system.local_endpoint(socket->native_handle());
  if (!bound) return unexpected(NetError(Step::bind, bound.error()).with_local(local));
  return bound->port();
}

// `count` consecutive ports of `search` that could all be bound a moment ago, starting the
// search at a random place (so parallel callers rarely collide). Racy as find_free_port is.
// Use when: choosing a FixedPortRotation range at start-up or in tests. The default search,
// 20000-29999, lies below Linux's ephemeral range (32768-60999), where the kernel does not hand
// out ports by itself. At most search.size() + count ports are probed.
template <SystemApi System = NativeSystem>
expected<PortRange, NetError> find_free_port_range(std::size_t count, PortRange search = PortRange{20000, 29999},
                                                   const Endpoint& address = Endpoint::any_v4(),
                                                   System system = System{}) {
  if (count == 0 || count > search.size())
    return unexpected(NetError(Step::bind, LibraryError::invalid_port_range,
                               "cannot find " + std::to_string(count) + " ports in " + search.to_string()));
  const std::size_t bases = search.size() - count + 1;
  std::size_t offset = std::random_device{}() % bases, scanned = 0;
  while (scanned < bases) {  // each pass moves at least one base on
    const auto base = static_cast<std::uint16_t>(search.first() + offset);
    std::size_t good = 0;
    while (good < count) {
      auto probe = detail::bind_socket(address.with_port(static_cast<std::uint16_t>(base + good)), system);
      if (!probe) break;
      ++good;
    }
    if (good == count) return PortRange::make(base, base + static_cast<long>(count) - 1);
    scanned += good + 1;
    offset = (offset + good + 1) % bases;
  }
  return unexpected(NetError(Step::bind, LibraryError::all_ports_cooling,
                             "no " + std::to_string(count) + " consecutive free ports in " + search.to_string()));
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
