// Port helpers for integration tests, in plain POSIX. Every loop here is bounded.
// (The loopback server itself is connpolicy.testing's LoopbackServer.)
#pragma once
#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>
#include <utility>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace test_support {

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
