// Loopback helpers for integration tests, in plain POSIX so they test the library rather than
// use it. Every loop here is bounded in count and time.
#pragma once
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace test_support {

// A TCP server on 127.0.0.1:<ephemeral>. Accepts everything; reads each connection until the
// client closes, then closes its side. So when a client closes first, the client's port is the
// one that ends in TIME_WAIT, as in the seed. Stops in its destructor within 10 ms.
class LoopbackServer {
 public:
  enum class Mode {
    client_closes_first,  // read until the client closes, then close: TIME_WAIT on the client
    server_closes_first,  // close each connection as soon as it is accepted: TIME_WAIT here
  };
  explicit LoopbackServer(Mode mode = Mode::client_closes_first) : mode_(mode) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 512) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n) != 0)
      throw std::runtime_error("LoopbackServer: cannot listen on 127.0.0.1");
    port_ = ntohs(a.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }
  ~LoopbackServer() {
    thread_.request_stop();
    thread_.join();
    for (int c : connections_) ::close(c);
    ::close(fd_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int closed() const { return closed_.load(); }  // connections the clients ended, then we closed
  // Waits (bounded) until `n` connections have been closed by both sides.
  bool wait_closed(int n, int max_ms = 2000) const {
    for (int i = 0; i < max_ms && closed_.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return closed_.load() >= n;
  }

 private:
  void run(std::stop_token stop) {
    std::vector<pollfd> fds;
    while (!stop.stop_requested()) {
      fds.assign(1, pollfd{fd_, POLLIN, 0});
      for (int c : connections_) fds.push_back(pollfd{c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        for (int i = 0; i < 256; ++i) {
          const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) break;
          ++accepted_;
          if (mode_ == Mode::server_closes_first) {
            ::close(c);
            ++closed_;
            continue;
          }
          connections_.push_back(c);
        }
      }
      std::vector<int> alive;
      for (std::size_t i = 1; i < fds.size(); ++i) {
        bool done = false;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          char buffer[256];
          const ssize_t r = ::read(fds[i].fd, buffer, sizeof buffer);
          done = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
        }
        if (done) {
          ::close(fds[i].fd);
          ++closed_;
        } else {
          alive.push_back(fds[i].fd);
        }
      }
      // keep connections accepted in this pass that were not polled yet
      for (std::size_t i = fds.size() - 1; i < connections_.size(); ++i) alive.push_back(connections_[i]);
      connections_ = alive;
    }
  }

  Mode mode_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> connections_;
  std::atomic<int> accepted_{0}, closed_{0};
  std::jthread thread_;
};

inline bool can_bind_any(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

// `n` consecutive ports in [low, high) that can be bound right now. Random, so parallel tests
// rarely meet. The default, 20000-29999, is below Linux's ephemeral range: the kernel does not
// hand those ports out by itself.
inline std::uint16_t free_port_block(int n, int low = 20000, int high = 30000) {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 500; ++attempt) {
    const int base = low + static_cast<int>(rng() % static_cast<unsigned>(high - low - n));
    bool ok = true;
    for (int p = base; ok && p < base + n; ++p) ok = can_bind_any(static_cast<std::uint16_t>(p));
    if (ok) return static_cast<std::uint16_t>(base);
  }
  throw std::runtime_error("no block of free ports found");
}

// net.ipv4.ip_local_port_range: the kernel's ephemeral ports, {first, last}.
inline std::pair<int, int> ephemeral_range() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int first = 32768, last = 60999;
  f >> first >> last;
  return {first, last};
}

// net.ipv4.tcp_timestamps (1 = on, the default): SO_REUSEADDR reconnects through TIME_WAIT need it.
inline int tcp_timestamps() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_timestamps");
  int v = -1;
  f >> v;
  return v;
}

}  // namespace test_support
