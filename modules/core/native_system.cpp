// POSIX implementation of NativeSystem (Linux first). The Winsock one is winsock_system.cpp; CMake
// builds exactly one of them.
module;
#include <algorithm>
#include <cerrno>
#include <string_view>
#include <chrono>
#include <limits>
#include <optional>
#include <span>
#include <system_error>
#include <vector>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
module connpolicy.core;

namespace connpolicy {
namespace {

std::error_code last_error() noexcept { return make_system_error(errno); }
// Success, without the out-of-line std::system_category() call that std::error_code{} makes each
// time: every call's common path (P1 in docs/benchmarks.md).
std::error_code no_error() noexcept {
  static const std::error_category& system = std::system_category();
  return {0, system};
}
std::error_code result(int rc) noexcept { return rc == 0 ? no_error() : last_error(); }

#ifndef IP_BIND_ADDRESS_NO_PORT
constexpr int IP_BIND_ADDRESS_NO_PORT = 24;
#endif
#ifndef IP_LOCAL_PORT_RANGE
constexpr int IP_LOCAL_PORT_RANGE = 51;
#endif

template <class Fill>
expected<Endpoint, std::error_code> endpoint_of(Fill fill) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (fill(reinterpret_cast<sockaddr*>(&storage), &length) != 0) return unexpected(last_error());
  auto e = Endpoint::from_sockaddr(storage, length);
  if (!e) return unexpected(e.error().code());
  return *e;
}

}  // namespace

bool is_in_progress(const std::error_code& code) noexcept {
  // The value first: every nonblocking connect asks, and the categories are calls.
  const int value = code.value();
  if (value == EINPROGRESS)
    return code.category() == std::system_category() || code.category() == std::generic_category();
  if (value == winsock::ewouldblock || value == winsock::einprogress) return code.category() == winsock_category();
  return false;
}

expected<native_handle_type, std::error_code> NativeSystem::open_socket(Family family,
                                                                        bool nonblocking) const noexcept {
  // SOCK_CLOEXEC always: a child process must never inherit a connection (or a reserved port).
  const int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  const int fd = ::socket(family == Family::ipv4 ? AF_INET : AF_INET6, type, IPPROTO_TCP);
  if (fd < 0) return unexpected(last_error());
  return fd;
}

std::error_code NativeSystem::set_option(native_handle_type h, SocketOption option, int value) const noexcept {
  switch (option) {
    case SocketOption::reuse_address: return result(::setsockopt(h, SOL_SOCKET, SO_REUSEADDR, &value, sizeof value));
    case SocketOption::bind_address_no_port:
      // Level IPPROTO_IP works on IPv6 sockets too.
      return result(::setsockopt(h, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &value, sizeof value));
    case SocketOption::local_port_range:
      return result(::setsockopt(h, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &value, sizeof value));
    case SocketOption::linger_reset: {
      const linger l{value != 0 ? 1 : 0, 0};
      return result(::setsockopt(h, SOL_SOCKET, SO_LINGER, &l, sizeof l));
    }
    case SocketOption::no_delay: return result(::setsockopt(h, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value));
    case SocketOption::exclusive_address:
      return no_error();  // Linux binds are exclusive unless SO_REUSEADDR/SO_REUSEPORT say otherwise
  }
  return make_system_error(ENOPROTOOPT);
}

std::error_code NativeSystem::set_nonblocking(native_handle_type h, bool on) const noexcept {
  int value = on ? 1 : 0;  // one syscall, where F_GETFL + F_SETFL would take two
  return result(::ioctl(h, FIONBIO, &value));
}

std::error_code NativeSystem::bind(native_handle_type h, const Endpoint& local) const noexcept {
  sockaddr_storage storage;
  const auto length = static_cast<socklen_t>(local.to_sockaddr(storage));
  return result(::bind(h, reinterpret_cast<const sockaddr*>(&storage), length));
}

std::error_code NativeSystem::connect(native_handle_type h, const Endpoint& remote) const noexcept {
  sockaddr_storage storage;
  const auto length = static_cast<socklen_t>(remote.to_sockaddr(storage));
  if (::connect(h, reinterpret_cast<const sockaddr*>(&storage), length) == 0) return no_error();
  // A signal during a blocking connect leaves it running: report it as in progress, and let the
  // caller wait for it like a non-blocking one.
  if (errno == EINTR) return make_system_error(EINPROGRESS);
  return last_error();
}

expected<bool, std::error_code> NativeSystem::wait_writable(native_handle_type h,
                                                            std::chrono::milliseconds timeout) const noexcept {
  using clock = std::chrono::steady_clock;
  // poll() takes an int of ms, and a negative one waits forever: clamp, never wrap.
  timeout = std::clamp(timeout, std::chrono::milliseconds::zero(),
                       std::chrono::milliseconds(std::numeric_limits<int>::max()));
  const auto deadline = saturating_add(clock::now(), timeout);  // one clock read; more only after a signal
  pollfd p{h, POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (n < 0 && errno == EINTR) {  // interrupted by a signal: resume with the time left
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
    if (left <= std::chrono::milliseconds::zero()) return false;
    p.revents = 0;
    n = ::poll(&p, 1, static_cast<int>(left.count()));
  }
  if (n < 0) return unexpected(last_error());
  return n > 0;  // > 0: writable, or POLLERR/POLLHUP (pending_error() tells which)
}

expected<std::optional<std::size_t>, std::error_code>
NativeSystem::wait_any_writable(std::span<const native_handle_type> handles, std::chrono::milliseconds timeout) const {
  timeout = std::clamp(timeout, std::chrono::milliseconds::zero(),
                       std::chrono::milliseconds(std::numeric_limits<int>::max()));
  std::vector<pollfd> polls;
  polls.reserve(handles.size());
  for (native_handle_type h : handles) polls.push_back({h, POLLOUT, 0});
  using clock = std::chrono::steady_clock;
  const auto deadline = saturating_add(clock::now(), timeout);
  int n = ::poll(polls.data(), polls.size(), static_cast<int>(timeout.count()));
  while (n < 0 && errno == EINTR) {  // interrupted by a signal: resume with the time left
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
    if (left <= std::chrono::milliseconds::zero()) return std::optional<std::size_t>();
    n = ::poll(polls.data(), polls.size(), static_cast<int>(left.count()));
  }
  if (n < 0) return unexpected(last_error());
  for (std::size_t i = 0; i < polls.size(); ++i)
    if (polls[i].revents != 0) return std::optional(i);
  return std::optional<std::size_t>();
}

std::error_code NativeSystem::pending_error(native_handle_type h) const noexcept {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(h, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return last_error();
  return error == 0 ? no_error() : make_system_error(error);
}

expected<Endpoint, std::error_code> NativeSystem::local_endpoint(native_handle_type h) const noexcept {
  return endpoint_of([h](sockaddr* a, socklen_t* n) { return ::getsockname(h, a, n); });
}

expected<Endpoint, std::error_code> NativeSystem::remote_endpoint(native_handle_type h) const noexcept {
  return endpoint_of([h](sockaddr* a, socklen_t* n) { return ::getpeername(h, a, n); });
}

std::error_code NativeSystem::close(native_handle_type h) const noexcept {
  // Never retry close() on EINTR: on Linux the descriptor is gone already, and a retry could
  // close a descriptor another thread has just been given.
  return result(::close(h));
}

}  // namespace connpolicy
