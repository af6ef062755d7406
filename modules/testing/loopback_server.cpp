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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
module connpolicy.testing;
import connpolicy.core;

namespace connpolicy {

struct LoopbackServer::State {
  Mode mode;
  int listener = -1;
  std::uint16_t port = 0;
  std::vector<int> connections;  // only the server thread touches it while running
  std::atomic<int> accepted{0}, closed{0};
  std::jthread thread;

  void run(std::stop_token stop) {
    std::vector<pollfd> fds;
    while (!stop.stop_requested()) {  // bounded by the stop request; each pass waits <= 10 ms
      fds.assign(1, pollfd{listener, POLLIN, 0});
      for (int c : connections) fds.push_back(pollfd{c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      std::vector<int> alive;
      for (std::size_t i = 1; i < fds.size(); ++i) {
        bool done = false;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          char buffer[512];
          const ssize_t r = ::read(fds[i].fd, buffer, sizeof buffer);
          done = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
        }
        if (done) {
          ::close(fds[i].fd);
          ++closed;
        } else {
          alive.push_back(fds[i].fd);
        }
      }
      if (fds[0].revents & POLLIN) {
        for (int i = 0; i < 256; ++i) {
          const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) break;
          ++accepted;
          if (mode == Mode::reset_on_accept) {
            const linger reset{1, 0};
            ::setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
          }
          if (mode != Mode::client_closes_first) {
            ::close(c);
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
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "LoopbackServer: socket");
  state_->listener = fd;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const int on = 1;
  if (port != 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  socklen_t n = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::system_error(e, std::system_category(), "LoopbackServer: listen on 127.0.0.1");
  }
  state_->port = ntohs(a.sin_port);
  state_->thread = std::jthread([s = state_.get()](std::stop_token stop) { s->run(stop); });
}

LoopbackServer::~LoopbackServer() {
  state_->thread.request_stop();
  state_->thread.join();
  for (int c : state_->connections) ::close(c);
  ::close(state_->listener);
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
