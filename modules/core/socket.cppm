// BasicSocket: a move-only owner of one socket handle, closed once, automatically. When its
// local port was lent by a port rotation, the socket also holds that lease and tells the
// rotation when it closes, so the port goes back with the right cooldown.
module;
#include <cstdint>
#include <memory>
#include <system_error>
#include <utility>
export module connpolicy.core:socket;
import :error;
import :endpoint;
import :net_error;
import :system;

export namespace connpolicy {

// How a leased port's socket ended. The rotation picks the port's cooldown from it.
enum class CloseKind : std::uint8_t {
  normal,    // FIN: if we closed first, the port sits in TIME_WAIT
  reset,     // RST (close_reset): no TIME_WAIT
  released,  // the handle was handed to the caller (release()): closed at an unknown time
};

// A local port lent to a socket; told once, when that socket closes.
class PortLease {
 public:
  virtual void on_close(CloseKind kind) noexcept = 0;
  // Whether, just before a normal close, the lease wants the local address the connection used
  // (one getsockname). A rotation with a census does: it can then ask the kernel about exactly
  // that connection's TIME_WAIT (a hash lookup) instead of surveying every socket.
  virtual bool wants_local_endpoint() const noexcept { return false; }
  virtual void closing_from(const Endpoint& local) noexcept { (void)local; }

 protected:
  PortLease() = default;
  PortLease(const PortLease&) = default;
  PortLease& operator=(const PortLease&) = default;
  ~PortLease() = default;
};

// A port's lease after its socket was handed to another owner (BasicSocket::hand_off): that
// owner says how the socket closed, and the rotation gives the port the right cooldown. Told at
// most once; destroyed untold, it reports `released` (the full cooldown), like release().
//
//   auto [fd, ticket] = std::move(socket).hand_off();
//   SSL_set_fd(ssl, fd);  ...  ::close(fd); ticket.closed(CloseKind::normal);
class LeaseTicket {
 public:
  LeaseTicket() noexcept = default;
  explicit LeaseTicket(std::shared_ptr<PortLease> lease) noexcept : lease_(std::move(lease)) {}
  LeaseTicket(LeaseTicket&& other) noexcept : lease_(std::move(other.lease_)) {}
  LeaseTicket& operator=(LeaseTicket&& other) noexcept {
    if (this != &other) {
      closed(CloseKind::released);
      lease_ = std::move(other.lease_);
    }
    return *this;
  }
  ~LeaseTicket() { closed(CloseKind::released); }

  // The socket is closed now, this way (normal: FIN, so TIME_WAIT if we closed first; reset:
  // SO_LINGER {1, 0}, no TIME_WAIT). Call it after the close, never before.
  void closed(CloseKind kind) noexcept {
    if (lease_) std::exchange(lease_, nullptr)->on_close(kind);
  }
  bool holds_lease() const noexcept { return lease_ != nullptr; }
  // For an owner that closes normally: whether the lease wants the connection's local address
  // first (a rotation with a census looks up exactly that TIME_WAIT), and telling it.
  bool wants_local_endpoint() const noexcept { return lease_ && lease_->wants_local_endpoint(); }
  void closing_from(const Endpoint& local) noexcept {
    if (lease_) lease_->closing_from(local);
  }

 private:
  std::shared_ptr<PortLease> lease_;
};

// The ticket for `lease`, whose socket `handle` goes to another owner. A lease that wants the
// local address (a rotation with a census) is told it now: it no longer changes, and the new
// owner will not say it at close.
template <SystemApi System>
LeaseTicket ticket_for(std::shared_ptr<PortLease> lease, System& system, native_handle_type handle) noexcept {
  if (lease && lease->wants_local_endpoint())
    if (auto local = system.local_endpoint(handle)) lease->closing_from(*local);
  return LeaseTicket(std::move(lease));
}

template <SystemApi System = NativeSystem>
class BasicSocket {
 public:
  using system_type = System;

  BasicSocket() noexcept = default;
  // Takes ownership of `handle`; it will be closed through `system`.
  explicit BasicSocket(native_handle_type handle, System system = System{}) noexcept
      : handle_(handle), system_(std::move(system)) {}

  BasicSocket(BasicSocket&& other) noexcept
      : handle_(std::exchange(other.handle_, invalid_handle)), lease_(std::move(other.lease_)), system_(other.system_) {
  }
  BasicSocket& operator=(BasicSocket&& other) noexcept {
    if (this != &other) {
      close();
      handle_ = std::exchange(other.handle_, invalid_handle);
      lease_ = std::move(other.lease_);
      system_ = other.system_;
    }
    return *this;
  }
  BasicSocket(const BasicSocket&) = delete;
  BasicSocket& operator=(const BasicSocket&) = delete;
  ~BasicSocket() {
    if (is_open()) close();  // a moved-from socket costs a test, not a call
  }

  native_handle_type native_handle() const noexcept { return handle_; }
  bool is_open() const noexcept { return handle_ != invalid_handle; }
  explicit operator bool() const noexcept { return is_open(); }

  // Gives the handle up: the caller closes it. A leased port goes back to its rotation as
  // "released", i.e. with the full cooldown, because nobody will say when it really closes.
  [[nodiscard]] native_handle_type release() noexcept {
    end_lease(CloseKind::released);
    return std::exchange(handle_, invalid_handle);
  }

  // What hand_off() gives: the handle, now the caller's to close, and the lease's ticket.
  struct HandOff {
    native_handle_type handle;
    LeaseTicket lease;
  };
  // Gives the handle to another owner (Asio, OpenSSL, a C library with a close callback) without
  // losing the port's lease: the owner closes the handle and then tells the ticket how. Use it
  // instead of release() when the socket's port came from a rotation.
  [[nodiscard]] HandOff hand_off() noexcept {
    if (!is_open()) return {invalid_handle, LeaseTicket(std::exchange(lease_, nullptr))};
    LeaseTicket ticket = ticket_for(std::exchange(lease_, nullptr), system_, handle_);
    return {std::exchange(handle_, invalid_handle), std::move(ticket)};
  }

  // Closes now (idempotent). The handle is released even when the OS reports an error.
  std::error_code close() noexcept { return close_as(CloseKind::normal); }

  // Closes with a reset (SO_LINGER {1, 0}): the peer sees RST, unsent data is dropped, and the
  // local port does not enter TIME_WAIT, so it can be bound again at once. Use when the exchange
  // is over and the port must be reused right away (HAProxy does this with its server side);
  // never as a default.
  std::error_code close_reset() noexcept {
    if (!is_open()) return {};
    const std::error_code linger = system_.set_option(handle_, SocketOption::linger_reset, 1);
    const std::error_code closed = close_as(linger ? CloseKind::normal : CloseKind::reset);
    return linger ? linger : closed;
  }

  expected<Endpoint, NetError> local_endpoint() const {
    auto e = system_.local_endpoint(handle_);
    if (!e) return unexpected(NetError(Step::read_address, e.error()).with_detail("getsockname"));
    return *e;
  }
  expected<Endpoint, NetError> remote_endpoint() const {
    auto e = system_.remote_endpoint(handle_);
    if (!e) return unexpected(NetError(Step::read_address, e.error()).with_detail("getpeername"));
    return *e;
  }

  System& system() noexcept { return system_; }
  const System& system() const noexcept { return system_; }

  // For bind policies that lend ports (via the Connector): the lease is told when this closes.
  void attach_lease(std::shared_ptr<PortLease> lease) noexcept { lease_ = std::move(lease); }
  bool has_lease() const noexcept { return lease_ != nullptr; }

 private:
  std::error_code close_as(CloseKind kind) noexcept {
    if (!is_open()) return {};
    if (kind == CloseKind::normal && lease_ && lease_->wants_local_endpoint())
      if (auto local = system_.local_endpoint(handle_)) lease_->closing_from(*local);
    const std::error_code ec = system_.close(std::exchange(handle_, invalid_handle));
    end_lease(kind);  // after close: the port is free (or in TIME_WAIT) only now
    return ec;
  }
  void end_lease(CloseKind kind) noexcept {
    if (lease_) std::exchange(lease_, nullptr)->on_close(kind);
  }

  native_handle_type handle_ = invalid_handle;
  std::shared_ptr<PortLease> lease_;
  [[no_unique_address]] mutable System system_{};
};

// The socket the library hands out by default.
using Socket = BasicSocket<NativeSystem>;

}  // namespace connpolicy
