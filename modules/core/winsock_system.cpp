// Winsock implementation of NativeSystem (Windows). The POSIX one is native_system.cpp; CMake
// builds exactly one of them. Differences that matter, and what this file does about them:
//  - Winsock needs WSAStartup before the first call: done once, on the first socket, from a
//    function-local static (no global constructor runs at program start);
//  - errors come from WSAGetLastError(), carried as winsock_category() codes (10048, 10061, ...)
//    that compare equal to the same Errc conditions as their errno twins;
//  - handles are SOCKET (an unsigned pointer-sized integer), closed with closesocket(); sockets
//    are not inherited by child processes (WSA_FLAG_NO_HANDLE_INHERIT, Windows' close-on-exec);
//  - non-blocking mode is ioctlsocket(FIONBIO); a pending connect reports WSAEWOULDBLOCK, and a
//    refused one shows in WSAPoll as POLLERR/POLLHUP (not POLLOUT), with SO_ERROR = 10061;
//  - options: SO_EXCLUSIVEADDRUSE (no other socket may bind the port, even with SO_REUSEADDR) and
//    SO_REUSE_UNICASTPORT (Windows' IP_BIND_ADDRESS_NO_PORT); the Linux-only ones are refused
//    with WSAENOPROTOOPT, which policies ask for as best effort.
module;
#include <cerrno>
#include <algorithm>
#include <chrono>
#include <limits>
#include <string_view>
#include <optional>
#include <span>
#include <system_error>
#include <vector>
#include <winsock2.h>
#include <ws2tcpip.h>
module connpolicy.core;

namespace connpolicy {
namespace {

#ifndef SO_REUSE_UNICASTPORT
constexpr int SO_REUSE_UNICASTPORT = 0x3007;
#endif
#ifndef SO_EXCLUSIVEADDRUSE
constexpr int SO_EXCLUSIVEADDRUSE = static_cast<int>(~SO_REUSEADDR);
#endif

std::error_code last_error() noexcept { return make_winsock_error(::WSAGetLastError()); }
std::error_code result(int rc) noexcept { return rc == 0 ? std::error_code{} : last_error(); }

// WSAStartup once per process, on first use; its failure is remembered and reported by every
// open_socket() (there is nothing else to do without Winsock).
std::error_code winsock_started() noexcept {
  static const int started = [] {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data);
  }();
  return started == 0 ? std::error_code{} : make_winsock_error(started);
}

SOCKET as_socket(native_handle_type h) noexcept { return static_cast<SOCKET>(h); }

template <class T>
std::error_code set(native_handle_type h, int level, int name, const T& value) noexcept {
  return result(::setsockopt(as_socket(h), level, name, reinterpret_cast<const char*>(&value), sizeof value));
}

template <class Fill>
expected<Endpoint, std::error_code> endpoint_of(Fill fill) noexcept {
  sockaddr_storage storage{};
  int length = sizeof storage;
  if (fill(reinterpret_cast<sockaddr*>(&storage), &length) != 0) return unexpected(last_error());
  auto e = Endpoint::from_sockaddr(storage, static_cast<std::size_t>(length));
  if (!e) return unexpected(e.error().code());
  return *e;
}

}  // namespace

bool is_in_progress(const std::error_code& code) noexcept {
  if (code.category() == winsock_category() || code.category() == std::system_category())
    return code.value() == winsock::ewouldblock || code.value() == winsock::einprogress;
  return code.category() == std::generic_category() && code.value() == EINPROGRESS;
}

expected<native_handle_type, std::error_code> NativeSystem::open_socket(Family family,
                                                                        bool nonblocking) const noexcept {
  if (auto ec = winsock_started()) return unexpected(ec);
  const SOCKET s = ::WSASocketW(family == Family::ipv4 ? AF_INET : AF_INET6, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return unexpected(last_error());
  const auto h = static_cast<native_handle_type>(s);
  if (nonblocking)
    if (auto ec = set_nonblocking(h, true)) {
      ::closesocket(s);
      return unexpected(ec);
    }
  return h;
}

std::error_code NativeSystem::set_option(native_handle_type h, SocketOption option, int value) const noexcept {
  switch (option) {
    case SocketOption::reuse_address: return set(h, SOL_SOCKET, SO_REUSEADDR, value);
    case SocketOption::bind_address_no_port:  // Windows 10 1703+: the port is chosen at connect()
      return set(h, SOL_SOCKET, SO_REUSE_UNICASTPORT, value);
    case SocketOption::exclusive_address: return set(h, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, value);
    case SocketOption::local_port_range: return make_winsock_error(winsock::enoprotoopt);  // Linux only
    case SocketOption::linger_reset: {
      const linger l{static_cast<u_short>(value != 0 ? 1 : 0), 0};
      return set(h, SOL_SOCKET, SO_LINGER, l);
    }
    case SocketOption::no_delay: return set(h, IPPROTO_TCP, TCP_NODELAY, value);
  }
  return make_winsock_error(winsock::enoprotoopt);
}

std::error_code NativeSystem::set_nonblocking(native_handle_type h, bool on) const noexcept {
  u_long value = on ? 1 : 0;
  return result(::ioctlsocket(as_socket(h), FIONBIO, &value));
}

std::error_code NativeSystem::bind(native_handle_type h, const Endpoint& local) const noexcept {
  sockaddr_storage storage;
  const auto length = static_cast<int>(local.to_sockaddr(storage));
  return result(::bind(as_socket(h), reinterpret_cast<const sockaddr*>(&storage), length));
}

std::error_code NativeSystem::connect(native_handle_type h, const Endpoint& remote) const noexcept {
  sockaddr_storage storage;
  const auto length = static_cast<int>(remote.to_sockaddr(storage));
  if (::connect(as_socket(h), reinterpret_cast<const sockaddr*>(&storage), length) == 0) return {};
  return last_error();  // WSAEWOULDBLOCK for a non-blocking connect under way: is_in_progress()
}

expected<bool, std::error_code> NativeSystem::wait_writable(native_handle_type h,
                                                            std::chrono::milliseconds timeout) const noexcept {
  // A refused connect is POLLERR (or POLLHUP), not POLLOUT: any of them ends the wait, and
  // pending_error() tells which it was.
  // WSAPoll takes an INT of ms, and a negative one waits forever: clamp, never wrap.
  timeout = std::clamp(timeout, std::chrono::milliseconds::zero(),
                       std::chrono::milliseconds(std::numeric_limits<INT>::max()));
  WSAPOLLFD p{as_socket(h), POLLWRNORM, 0};
  const int n = ::WSAPoll(&p, 1, static_cast<INT>(timeout.count()));
  if (n == SOCKET_ERROR) return unexpected(last_error());
  return n > 0;
}

expected<std::optional<std::size_t>, std::error_code>
NativeSystem::wait_any_writable(std::span<const native_handle_type> handles, std::chrono::milliseconds timeout) const {
  timeout = std::clamp(timeout, std::chrono::milliseconds::zero(),
                       std::chrono::milliseconds(std::numeric_limits<INT>::max()));
  std::vector<WSAPOLLFD> polls;
  polls.reserve(handles.size());
  for (native_handle_type h : handles) polls.push_back({as_socket(h), POLLWRNORM, 0});
  const int n = ::WSAPoll(polls.data(), static_cast<ULONG>(polls.size()), static_cast<INT>(timeout.count()));
  if (n == SOCKET_ERROR) return unexpected(last_error());
  for (std::size_t i = 0; i < polls.size(); ++i)
    if (polls[i].revents != 0) return std::optional(i);
  return std::optional<std::size_t>();
}

std::error_code NativeSystem::pending_error(native_handle_type h) const noexcept {
  int error = 0;
  int length = sizeof error;
  if (::getsockopt(as_socket(h), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&error), &length) != 0)
    return last_error();
  return error == 0 ? std::error_code{} : make_winsock_error(error);
}

expected<Endpoint, std::error_code> NativeSystem::local_endpoint(native_handle_type h) const noexcept {
  return endpoint_of([h](sockaddr* a, int* n) { return ::getsockname(as_socket(h), a, n); });
}

expected<Endpoint, std::error_code> NativeSystem::remote_endpoint(native_handle_type h) const noexcept {
  return endpoint_of([h](sockaddr* a, int* n) { return ::getpeername(as_socket(h), a, n); });
}

std::error_code NativeSystem::close(native_handle_type h) const noexcept {
  return result(::closesocket(as_socket(h)));  // releases the handle even when it reports an error
}

}  // namespace connpolicy
