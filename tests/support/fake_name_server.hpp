// A name server on 127.0.0.1:53 (UDP) for tests in a network namespace of their own: it answers
// A and AAAA queries for one name, each after a delay of its own, so a test can make the AAAA
// answer come late through the real getaddrinfo (SystemResolver) and Asio's resolver. Other names
// get NXDOMAIN at once. Linux only; binding port 53 needs the namespace's root.
#pragma once
#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace test_support {

class FakeNameServer {
 public:
  struct Answer {
    std::vector<std::array<std::uint8_t, 16>> addresses;  // 4 bytes used for A
    std::chrono::milliseconds delay{};
  };
  // `name` in lower case, without the final dot. ok() is false when port 53 cannot be bound.
  FakeNameServer(std::string name, Answer a, Answer aaaa)
      : name_(std::move(name)), a_(std::move(a)), aaaa_(std::move(aaaa)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in here{};
    here.sin_family = AF_INET;
    here.sin_port = htons(53);
    here.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&here), sizeof here) != 0) return;
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeNameServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  FakeNameServer(const FakeNameServer&) = delete;
  FakeNameServer& operator=(const FakeNameServer&) = delete;
  bool ok() const { return thread_.joinable(); }

 private:
  struct Pending {
    std::chrono::steady_clock::time_point due;
    std::vector<std::uint8_t> reply;
    sockaddr_in to;
  };

  void serve() {  // bounded by stop_: each pass waits at most 5 ms
    std::vector<Pending> pending;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) > 0) {
        std::uint8_t query[512];
        sockaddr_in from{};
        socklen_t from_size = sizeof from;
        const ssize_t n = ::recvfrom(fd_, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&from), &from_size);
        if (n > 12) answer(std::vector<std::uint8_t>(query, query + n), from, pending);
      }
      const auto now = std::chrono::steady_clock::now();
      for (auto it = pending.begin(); it != pending.end();)
        if (it->due <= now) {
          ::sendto(fd_, it->reply.data(), it->reply.size(), 0, reinterpret_cast<sockaddr*>(&it->to), sizeof it->to);
          it = pending.erase(it);
        } else {
          ++it;
        }
    }
  }

  // The reply: the query's header and question, then one record per address (or NXDOMAIN).
  void answer(const std::vector<std::uint8_t>& q, const sockaddr_in& from, std::vector<Pending>& pending) {
    std::string name;
    std::size_t i = 12;
    while (i < q.size() && q[i] != 0 && i + 1 + q[i] <= q.size()) {
      if (!name.empty()) name += '.';
      for (std::size_t k = 1; k <= q[i]; ++k) name += static_cast<char>(std::tolower(q[i + k]));
      i += 1 + q[i];
    }
    if (i + 5 > q.size()) return;
    const std::uint16_t type = static_cast<std::uint16_t>(q[i + 1] << 8 | q[i + 2]);
    const std::size_t question_end = i + 5;
    std::vector<std::uint8_t> r(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(question_end));
    r[2] = 0x84 | (q[2] & 0x01);  // a response, authoritative, recursion desired as asked
    r[3] = 0x80;                  // recursion available, no error
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
    const Answer* found = name != name_ ? nullptr : type == 1 ? &a_ : type == 28 ? &aaaa_ : nullptr;
    if (name != name_) r[3] |= 3;  // NXDOMAIN
    std::chrono::milliseconds delay{};
    if (found) {
      const std::uint8_t size = type == 1 ? 4 : 16;
      r[7] = static_cast<std::uint8_t>(found->addresses.size());
      for (const auto& address : found->addresses) {
        const std::uint8_t record[] = {0xc0, 0x0c, 0, static_cast<std::uint8_t>(type), 0, 1, 0, 0, 0, 0, 0, size};
        r.insert(r.end(), std::begin(record), std::end(record));
        r.insert(r.end(), address.begin(), address.begin() + size);
      }
      delay = found->delay;
    }
    pending.push_back({std::chrono::steady_clock::now() + delay, std::move(r), from});
  }

  std::string name_;
  Answer a_, aaaa_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace test_support
#endif
