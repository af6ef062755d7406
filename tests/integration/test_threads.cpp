// Eight threads, one Connector, one FixedPortRotation, one loopback server: every connect is
// accounted for, no port is ever held by two live sockets, no descriptor leaks. Run under TSan
// by the tsan workflow.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;

TEST_CASE("8 threads x 10000 connects through one shared rotation and connector", "[integration][threads]") {
  constexpr int threads = 8, per_thread = 10000;
  const auto fds = test_support::open_fd_count();
  std::mutex mutex;
  std::set<std::uint16_t> live;
  std::map<std::string, int> errors;  // condition -> count
  std::atomic<int> made{0}, failed{0}, duplicates{0};
  {
    cp::LoopbackServer server;
    const auto range = cp::find_free_port_range(64).value();
    // Each socket ends with a reset (no TIME_WAIT), so the ring turns at full speed; a port is
    // lent again only after its socket has closed.
    cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry> client{
        cp::FixedPortRotation{range}, cp::FixedDelayRetry{{.delay = 1ms, .max_attempts = 50}}};
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (int i = 0; i < per_thread; ++i) {
          auto s = client.connect(server.endpoint());
          if (!s) {
            ++failed;
            std::lock_guard lock(mutex);
            ++errors[std::string(cp::describe(s.error().condition()))];
            continue;
          }
          ++made;
          const auto port = s->local_endpoint().value().port();
          {
            std::lock_guard lock(mutex);
            if (!live.insert(port).second) ++duplicates;
          }
          {
            std::lock_guard lock(mutex);
            live.erase(port);
          }
          s->close_reset();  // the rotation may lend the port again only after this
        }
      });
    }
    workers.clear();
    CHECK(client.bind_policy().snapshot().in_use == 0);
  }
  INFO("made " << made << ", failed " << failed);
  for (const auto& [what, n] : errors) UNSCOPED_INFO(what << ": " << n);
  CHECK(made + failed == threads * per_thread);  // every connect accounted for
  CHECK(duplicates == 0);
  CHECK(failed == 0);
  CHECK(test_support::open_fd_count() == fds);
}
