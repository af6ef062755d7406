// The system API: the handful of socket calls the library makes, behind a concept so tests can
// put a fake in their place (connpolicy.testing's FakeSystem) and the real one costs nothing.
// Every call reports failure as a std::error_code (errno, or the Winsock code on Windows);
// none of them throws.
module;
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
export module connpolicy.core:system;
import :error;
import :endpoint;

export namespace connpolicy {

#ifdef _WIN32
using native_handle_type = std::uintptr_t;  // SOCKET
inline constexpr native_handle_type invalid_handle = ~native_handle_type{0};
#else
using native_handle_type = int;
inline constexpr native_handle_type invalid_handle = -1;
#endif

// Options named for what they do; the system layer knows each one's level and name.
enum class SocketOption : std::uint8_t {
  reuse_address,         // SO_REUSEADDR: bind a port whose old connection is in TIME_WAIT
  bind_address_no_port,  // IP_BIND_ADDRESS_NO_PORT (Linux >= 4.2), SO_REUSE_UNICASTPORT (Windows 10
                         // 1703+): the port is chosen at connect(), shared per destination
  local_port_range,      // IP_LOCAL_PORT_RANGE (Linux >= 6.3): value = last << 16 | first
  linger_reset,          // SO_LINGER {1, 0} if value != 0: close() sends RST, no TIME_WAIT
  no_delay,              // TCP_NODELAY
  exclusive_address,     // Windows SO_EXCLUSIVEADDRUSE: no other socket may bind this port, not even
                         // with SO_REUSEADDR (which on Windows would let it take the port). Linux
                         // binds are exclusive already unless SO_REUSEADDR/SO_REUSEPORT: a no-op
};

std::string_view to_string(SocketOption option) noexcept;

// What a system API must offer. Sockets are TCP, close-on-exec, and non-blocking if asked.
template <class S>
concept SystemApi = std::copy_constructible<S> &&
                    requires(S& sys, native_handle_type h, const Endpoint& endpoint, Family family, SocketOption option,
                             int value, bool flag, std::chrono::milliseconds timeout) {
                      { sys.open_socket(family, flag) } -> std::same_as<expected<native_handle_type, std::error_code>>;
                      { sys.set_option(h, option, value) } -> std::same_as<std::error_code>;
                      { sys.set_nonblocking(h, flag) } -> std::same_as<std::error_code>;
                      { sys.bind(h, endpoint) } -> std::same_as<std::error_code>;
                      // A non-blocking connect that has started reports is_in_progress(code).
                      { sys.connect(h, endpoint) } -> std::same_as<std::error_code>;
                      // true: writable (connected or failed: ask pending_error); false: timed out.
                      { sys.wait_writable(h, timeout) } -> std::same_as<expected<bool, std::error_code>>;
                      // SO_ERROR: the outcome of a finished non-blocking connect (empty = connected).
                      { sys.pending_error(h) } -> std::same_as<std::error_code>;
                      { sys.local_endpoint(h) } -> std::same_as<expected<Endpoint, std::error_code>>;
                      { sys.remote_endpoint(h) } -> std::same_as<expected<Endpoint, std::error_code>>;
                      // Releases the handle even when it reports an error.
                      { sys.close(h) } -> std::same_as<std::error_code>;
                    };

// A system API that can wait for several sockets at once: a Connector over it races a name's
// addresses (Happy Eyeballs). Returns the index of a writable (or failed) one, or nullopt when
// the timeout passed. Without it, the Connector tries one address after another.
template <class S>
concept RacingSystemApi =
    SystemApi<S> && requires(S& sys, std::span<const native_handle_type> handles, std::chrono::milliseconds timeout) {
      {
        sys.wait_any_writable(handles, timeout)
      } -> std::same_as<expected<std::optional<std::size_t>, std::error_code>>;
    };

// "A non-blocking connect has started": EINPROGRESS, or Winsock's WSAEWOULDBLOCK/WSAEINPROGRESS.
bool is_in_progress(const std::error_code& code) noexcept;

// The operating system itself. Stateless, so a BasicSocket<NativeSystem> is just the handle.
struct NativeSystem {
  expected<native_handle_type, std::error_code> open_socket(Family family, bool nonblocking) const noexcept;
  std::error_code set_option(native_handle_type h, SocketOption option, int value) const noexcept;
  std::error_code set_nonblocking(native_handle_type h, bool on) const noexcept;
  std::error_code bind(native_handle_type h, const Endpoint& local) const noexcept;
  std::error_code connect(native_handle_type h, const Endpoint& remote) const noexcept;
  // Waits the whole timeout even when signals interrupt poll() (EINTR).
  expected<bool, std::error_code> wait_writable(native_handle_type h, std::chrono::milliseconds timeout) const noexcept;
  // poll() over them all (WSAPoll on Windows); resumes after a signal, as wait_writable does.
  expected<std::optional<std::size_t>, std::error_code> wait_any_writable(std::span<const native_handle_type> handles,
                                                                          std::chrono::milliseconds timeout) const;
  std::error_code pending_error(native_handle_type h) const noexcept;
  expected<Endpoint, std::error_code> local_endpoint(native_handle_type h) const noexcept;
  expected<Endpoint, std::error_code> remote_endpoint(native_handle_type h) const noexcept;
  std::error_code close(native_handle_type h) const noexcept;
};

}  // namespace connpolicy
