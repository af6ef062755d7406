// TcpSocket: what the Asio driver's async_connect completes with. An asio::ip::tcp::socket that
// also holds its port's lease, so a rotation learns when and how the connection closed (close():
// the port rests through TIME_WAIT; close_reset(): no rest), as it does for a blocking Socket.
//
// It is a TCP stream where Asio code expects one: it reads and writes like the socket it holds
// (async_read, async_write, read, write take it as it is, and so does
// asio::ssl::stream<TcpSocket>), and has the socket's endpoints, options, shutdown and cancel.
// socket() gives the asio socket itself for anything else; release() or hand_off() makes it a
// plain asio::ip::tcp::socket, the lease told what it needs to know.
module;
#include <asio.hpp>
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>
export module connpolicy.asio:tcp_socket;
import connpolicy.core;

namespace connpolicy::asio::detail {
// SO_LINGER {1, 0}, then close: a reset, no TIME_WAIT. False (the socket left open) when the
// linger option could not be set.
inline bool close_with_reset(::asio::ip::tcp::socket& socket, std::error_code& ec) noexcept {
  socket.set_option(::asio::socket_base::linger(true, 0), ec);
  if (ec) return false;
  socket.close(ec);
  return true;
}
}  // namespace connpolicy::asio::detail

export namespace connpolicy::asio {

class TcpSocket {
 public:
  using socket_type = ::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using lowest_layer_type = socket_type::lowest_layer_type;

  explicit TcpSocket(socket_type socket, LeaseTicket lease = {}) noexcept
      : socket_(std::move(socket)), lease_(std::move(lease)) {}
  TcpSocket(TcpSocket&&) noexcept = default;
  TcpSocket& operator=(TcpSocket&& other) noexcept {
    if (this != &other) {
      close();
      socket_ = std::move(other.socket_);
      lease_ = std::move(other.lease_);
    }
    return *this;
  }
  ~TcpSocket() { close(); }

  socket_type& socket() noexcept { return socket_; }
  const socket_type& socket() const noexcept { return socket_; }
  executor_type get_executor() noexcept { return socket_.get_executor(); }
  lowest_layer_type& lowest_layer() noexcept { return socket_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const noexcept { return socket_.lowest_layer(); }
  bool is_open() const noexcept { return socket_.is_open(); }
  bool holds_lease() const noexcept { return lease_.holds_lease(); }

  // Closes now (idempotent); the lease hears "normal": if we closed first, the port rests
  // through TIME_WAIT. A lease that wants the local address (a rotation with a census) gets it
  // first, as from a blocking Socket.
  std::error_code close() noexcept {
    std::error_code ec;
    if (socket_.is_open() && lease_.wants_local_endpoint())
      if (auto local = local_address()) lease_.closing_from(*local);
    if (socket_.is_open()) socket_.close(ec);
    lease_.closed(CloseKind::normal);
    return ec;
  }
  // Closes with a reset (SO_LINGER {1, 0}): no TIME_WAIT, the port can be lent again at once.
  // Unsent data is dropped. Use when the exchange is over and the port must come back now.
  std::error_code close_reset() noexcept {
    if (!socket_.is_open()) {  // closed through socket() already, with a FIN: the port rests
      lease_.closed(CloseKind::normal);
      return {};
    }
    std::error_code ec;
    if (!detail::close_with_reset(socket_, ec)) return close();
    lease_.closed(CloseKind::reset);
    return ec;
  }

  // Gives the connection up as a plain asio socket, now the caller's to close. A leased port goes
  // back to its rotation as "released", with the full cooldown, because nobody will say when it
  // really closes; hand_off() keeps that word.
  [[nodiscard]] socket_type release() noexcept {
    lease_.closed(CloseKind::released);
    return std::move(socket_);
  }
  // What hand_off() gives: the asio socket, now the caller's to close, and the lease's ticket.
  struct HandOff {
    socket_type socket;
    LeaseTicket lease;
  };
  // Gives the connection to another owner (code that takes an asio::ip::tcp::socket) without
  // losing the port's lease: the owner closes the socket and then tells the ticket how
  // (ticket.closed(CloseKind::reset) after a reset close: the port is ready at once). A lease that
  // wants the local address is told it now, as the new owner will not.
  [[nodiscard]] HandOff hand_off() noexcept {
    if (socket_.is_open() && lease_.wants_local_endpoint())
      if (auto local = local_address()) lease_.closing_from(*local);
    return {std::move(socket_), std::move(lease_)};
  }

  // The socket's own, as on an asio::ip::tcp::socket (these throw std::system_error where the
  // asio socket's do; the overloads with an error_code do not throw).
  socket_type::endpoint_type remote_endpoint() const { return socket_.remote_endpoint(); }
  socket_type::endpoint_type remote_endpoint(std::error_code& ec) const { return socket_.remote_endpoint(ec); }
  socket_type::endpoint_type local_endpoint() const { return socket_.local_endpoint(); }
  socket_type::endpoint_type local_endpoint(std::error_code& ec) const { return socket_.local_endpoint(ec); }
  template <class Option>
  void set_option(const Option& option) {
    socket_.set_option(option);
  }
  template <class Option>
  std::error_code set_option(const Option& option, std::error_code& ec) {
    socket_.set_option(option, ec);
    return ec;
  }
  template <class Option>
  void get_option(Option& option) const {
    socket_.get_option(option);
  }
  template <class Option>
  std::error_code get_option(Option& option, std::error_code& ec) const {
    socket_.get_option(option, ec);
    return ec;
  }
  void shutdown(socket_type::shutdown_type what) { socket_.shutdown(what); }
  std::error_code shutdown(socket_type::shutdown_type what, std::error_code& ec) {
    socket_.shutdown(what, ec);
    return ec;
  }
  // Ends the reads and writes in flight with operation_aborted; the connection stays open.
  void cancel() { socket_.cancel(); }
  std::error_code cancel(std::error_code& ec) {
    socket_.cancel(ec);
    return ec;
  }
  socket_type::native_handle_type native_handle() { return socket_.native_handle(); }

  // The stream operations, as the socket's own.
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers>
  std::size_t read_some(const Buffers& buffers) {
    return socket_.read_some(buffers);
  }
  template <class Buffers>
  std::size_t read_some(const Buffers& buffers, std::error_code& ec) {
    return socket_.read_some(buffers, ec);
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers) {
    return socket_.write_some(buffers);
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers, std::error_code& ec) {
    return socket_.write_some(buffers, ec);
  }

 private:
  // The local address in the library's terms, for a lease that wants it.
  std::optional<Endpoint> local_address() const noexcept {
    std::error_code ec;
    const auto local = socket_.local_endpoint(ec);
    if (ec) return std::nullopt;
    sockaddr_storage storage{};
    std::memcpy(&storage, local.data(), std::min<std::size_t>(local.size(), sizeof storage));
    if (auto e = Endpoint::from_sockaddr(storage, local.size())) return *e;
    return std::nullopt;
  }

  socket_type socket_;
  LeaseTicket lease_;
};

}  // namespace connpolicy::asio
