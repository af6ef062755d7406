module;
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <system_error>
#include <thread>
#include <vector>
#ifdef _WIN32
#include <winsock2.h>
#else
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
module connpolicy.testing;
import connpolicy.core;

namespace connpolicy {
namespace {
// The few calls NativeSystem does not offer, for POSIX and Winsock alike. Sockets are made,
// bound and closed through NativeSystem (which also starts Winsock).
#ifdef _WIN32
using pollfd_t = WSAPOLLFD;
int poll_sockets(pollfd_t* fds, std::size_t n, int ms) { return ::WSAPoll(fds, static_cast<ULONG>(n), ms); }
long read_some(native_handle_type c, char* buffer, int size) { return ::recv(static_cast<SOCKET>(c), buffer, size, 0); }
bool would_block() { return ::WSAGetLastError() == WSAEWOULDBLOCK; }
bool listen_on(native_handle_type h) { return ::listen(static_cast<SOCKET>(h), 1024) == 0; }
native_handle_type accept_one(native_handle_type listener) {
  const SOCKET c = ::accept(static_cast<SOCKET>(listener), nullptr, nullptr);
  if (c == INVALID_SOCKET) return invalid_handle;
  u_long on = 1;
  ::ioctlsocket(c, FIONBIO, &on);
  return static_cast<native_handle_type>(c);
}
int last_socket_error() { return ::WSAGetLastError(); }
#else
using pollfd_t = pollfd;
int poll_sockets(pollfd_t* fds, std::size_t n, int ms) { return ::poll(fds, n, ms); }
long read_some(native_handle_type c, char* buffer, int size) {
  return ::read(c, buffer, static_cast<std::size_t>(size));
}
bool would_block() { return errno == EAGAIN || errno == EINTR; }
bool listen_on(native_handle_type h) { return ::listen(h, 1024) == 0; }
native_handle_type accept_one(native_handle_type listener) {
  const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  return c < 0 ? invalid_handle : c;
}
int last_socket_error() { return errno; }
#endif
}  // namespace

struct LoopbackServer::State {
  Mode mode;
  NativeSystem system;
  native_handle_type listener = invalid_handle;
  std::uint16_t port = 0;
  std::vector<native_handle_type> connections;  // only the server thread touches it while running
  std::atomic<int> accepted{0}, closed{0};
  std::jthread thread;

  void run(std::stop_token stop) {
    std::vector<pollfd_t> fds;
    while (!stop.stop_requested()) {  // bounded by the stop request; each pass waits <= 10 ms
      fds.assign(1, pollfd_t{listener, POLLIN, 0});
      for (native_handle_type c : connections) fds.push_back(pollfd_t{c, POLLIN, 0});
      if (poll_sockets(fds.data(), fds.size(), 10) <= 0) continue;
      std::vector<native_handle_type> alive;
      for (std::size_t i = 1; i < fds.size(); ++i) {
        bool done = false;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          char buffer[512];
          const long r = read_some(fds[i].fd, buffer, sizeof buffer);
          done = r == 0 || (r < 0 && !would_block());
        }
        if (done) {
          system.close(fds[i].fd);
          ++closed;
        } else {
          alive.push_back(fds[i].fd);
        }
      }
      if (fds[0].revents & POLLIN) {
        for (int i = 0; i < 256; ++i) {
          const native_handle_type c = accept_one(listener);
          if (c == invalid_handle) break;
          ++accepted;
          if (mode == Mode::reset_on_accept) system.set_option(c, SocketOption::linger_reset, 1);
          if (mode != Mode::client_closes_first) {
            system.close(c);
            ++closed;
          } else {
            alive.push_back(c);
          }
        }
      }
      connections = std::move(alive);
    }
  }
};

LoopbackServer::LoopbackServer(Mode mode, std::uint16_t port) : state_(std::make_unique<State>()) {
  state_->mode = mode;
  NativeSystem& system = state_->system;
  auto fd = system.open_socket(Family::ipv4, /*nonblocking=*/true);
  if (!fd) throw std::system_error(fd.error(), "LoopbackServer: socket");
  state_->listener = *fd;
  if (port != 0) system.set_option(*fd, SocketOption::reuse_address, 1);
  std::error_code e = system.bind(*fd, Endpoint::loopback_v4(port));
  if (!e && !listen_on(*fd)) e = std::error_code(last_socket_error(), std::system_category());
  auto local = e ? expected<Endpoint, std::error_code>(unexpected(e)) : system.local_endpoint(*fd);
  if (!local) {
    system.close(*fd);
    throw std::system_error(local.error(), "LoopbackServer: listen on 127.0.0.1");
  }
  state_->port = local->port();
  state_->thread = std::jthread([s = state_.get()](std::stop_token stop) { s->run(stop); });
}

LoopbackServer::~LoopbackServer() {
  state_->thread.request_stop();
  state_->thread.join();
  for (native_handle_type c : state_->connections) state_->system.close(c);
  state_->system.close(state_->listener);
}

Endpoint LoopbackServer::endpoint() const noexcept { return Endpoint::loopback_v4(state_->port); }
int LoopbackServer::accepted() const noexcept { return state_->accepted.load(); }
int LoopbackServer::closed() const noexcept { return state_->closed.load(); }

bool LoopbackServer::wait_closed(int n, std::chrono::milliseconds timeout) const {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (state_->closed.load() < n) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace connpolicy
