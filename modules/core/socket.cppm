// BasicSocket: a move-only owner of one socket handle. Closing is automatic and happens once.
// With the real system (Socket) it is exactly one handle wide; with a fake system it also holds
// the fake (a shared handle), so the fake can count what is closed.
module;
#include <system_error>
#include <utility>
export module connpolicy.core:socket;
import :error;
import :endpoint;
import :net_error;
import :system;

export namespace connpolicy {

template <SystemApi System = NativeSystem>
class BasicSocket {
 public:
  using system_type = System;

  BasicSocket() noexcept = default;
  // Takes ownership of `handle`; it will be closed through `system`.
  explicit BasicSocket(native_handle_type handle, System system = System{}) noexcept
      : handle_(handle), system_(std::move(system)) {}

  BasicSocket(BasicSocket&& other) noexcept
      : handle_(std::exchange(other.handle_, invalid_handle)), system_(other.system_) {}
  BasicSocket& operator=(BasicSocket&& other) noexcept {
    if (this != &other) {
      close();
      handle_ = std::exchange(other.handle_, invalid_handle);
      system_ = other.system_;
    }
    return *this;
  }
  BasicSocket(const BasicSocket&) = delete;
  BasicSocket& operator=(const BasicSocket&) = delete;
  ~BasicSocket() { close(); }

  native_handle_type native_handle() const noexcept { return handle_; }
  bool is_open() const noexcept { return handle_ != invalid_handle; }
  explicit operator bool() const noexcept { return is_open(); }

  // Gives the handle up: the caller now closes it.
  [[nodiscard]] native_handle_type release() noexcept { return std::exchange(handle_, invalid_handle); }

  // Closes now (idempotent). The handle is released even when the OS reports an error.
  std::error_code close() noexcept {
    if (!is_open()) return {};
    return system_.close(std::exchange(handle_, invalid_handle));
  }

  expected<Endpoint, NetError> local_endpoint() const {
    auto e = system_.local_endpoint(handle_);
    if (!e) return unexpected(NetError(Step::resolve, e.error()).with_detail("getsockname"));
    return *e;
  }
  expected<Endpoint, NetError> remote_endpoint() const {
    auto e = system_.remote_endpoint(handle_);
    if (!e) return unexpected(NetError(Step::resolve, e.error()).with_detail("getpeername"));
    return *e;
  }

  System& system() noexcept { return system_; }
  const System& system() const noexcept { return system_; }

 private:
  native_handle_type handle_ = invalid_handle;
  [[no_unique_address]] mutable System system_{};
};

// The socket the library hands out by default: one handle, closed on destruction.
using Socket = BasicSocket<NativeSystem>;

}  // namespace connpolicy
