// TcpSocket: what the Asio driver's async_connect completes with. An asio::ip::tcp::socket that
// also holds its port's lease, so a rotation learns when and how the connection closed (close():
// the port rests through TIME_WAIT; close_reset(): no rest), as it does for a blocking Socket.
//
// It reads and writes like the socket it holds (async_read, async_write, read, write take it
// as it is, and so does asio::ssl::stream<TcpSocket>); socket() gives the asio socket itself
// for anything else (options, shutdown, remote_endpoint).
module;
#include <asio.hpp>
#include <algorithm>
#include <cstddef>
#include <cstring>
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
    if (socket_.is_open() && lease_.wants_local_endpoint()) {
      const auto local = socket_.local_endpoint(ec);
      sockaddr_storage storage{};
      std::memcpy(&storage, local.data(), std::min<std::size_t>(local.size(), sizeof storage));
      if (!ec)
        if (auto e = Endpoint::from_sockaddr(storage, local.size())) lease_.closing_from(*e);
    }
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
  socket_type socket_;
  LeaseTicket lease_;
};

}  // namespace connpolicy::asio
