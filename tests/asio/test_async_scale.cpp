// The Asio driver at scale, on loopback: many coroutines on one thread through one shared policy,
// retries that overlap instead of queueing, an io_context run by several threads (TSan), and the
// same scenarios through both drivers giving the same observer events.
#include <asio.hpp>
// Asio without threads (its guess on some toolchains) has no-op mutexes: the 4-thread test below
// would corrupt the io_context rather than test the driver.
#if !defined(ASIO_HAS_THREADS)
#error "Asio was configured without threads: connpolicy::asio must tell it (cmake/asio.cmake)"
#endif
#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "fd_count.hpp"
#include "loopback.hpp"
#include "events.hpp"

namespace cp = connpolicy;
using test_support::Recorder;
using namespace std::chrono_literals;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;
using test_support::open_fd_count;

namespace {
// Below the kernel's ephemeral range, so the rotation's ports are not the kernel's.
cp::PortRange free_range(int n) {
  const int first = test_support::free_port_block(n, 10000, test_support::ephemeral_range().first - 1);
  return cp::PortRange::make(first, first + n - 1).value();
}

// Runs `n` coroutines that each connect once with `client` and keep the socket; returns them.
template <class Client>
std::vector<Result> connect_many(asio::io_context& io, Client& client, cp::Endpoint to, int n) {
  std::vector<std::optional<Result>> slots(static_cast<std::size_t>(n));
  for (auto& slot : slots)
    asio::co_spawn(
        io,
        [&client, &slot, to, ex = io.get_executor()]() -> asio::awaitable<void> {
          slot.emplace(co_await cp::asio::async_connect(ex, client, to, asio::use_awaitable));
        },
        asio::detached);
  io.run_for(60s);
  std::vector<Result> out;
  for (auto& slot : slots)
    if (slot) out.push_back(std::move(*slot));
  return out;
}

template <class Bind>
void thousand_on_one_thread(Bind bind) {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<Bind> client{bind};
    asio::io_context io(1);
    auto sockets = connect_many(io, client, server.endpoint(), 1000);
    REQUIRE(sockets.size() == 1000);
    std::set<std::uint16_t> ports;
    int connected = 0;
    for (auto& s : sockets) {
      if (!s) {
        FAIL_CHECK(s.error().message());
        continue;
      }
      ++connected;
      ports.insert(s->socket().local_endpoint().port());
    }
    CHECK(connected == 1000);
    CHECK(ports.size() == static_cast<std::size_t>(connected));  // no port lent to two live sockets
    for (auto& s : sockets)  // leave no 1000 TIME_WAITs behind for the next test's port search
      if (s) s->close_reset();
  }
  CHECK(open_fd_count() == fds);
}

}  // namespace

TEST_CASE("asio: 1000 coroutines on one thread through one shared FixedPortRotation", "[asio][scale]") {
  thousand_on_one_thread(cp::FixedPortRotation{free_range(1200)});
}

TEST_CASE("asio: 1000 coroutines on one thread with EphemeralBind", "[asio][scale]") {
  thousand_on_one_thread(cp::EphemeralBind{});
}

TEST_CASE("asio: 100 coroutines retry a server that is down for 300 ms, together, on one thread", "[asio][scale]") {
  const auto fds = open_fd_count();
  {
    const auto port = test_support::free_port_block(1);
    // 100 ms between rounds: one after another, 100 clients that each wait at least 3 rounds
    // would need 30 s; overlapping on one thread they need the outage and a round or two.
    cp::Connector<cp::NoBind, cp::FixedDelayRetry> client{{},
                                                          cp::FixedDelayRetry{{.delay = 100ms, .max_attempts = 50}}};
    asio::io_context io(1);
    std::optional<cp::LoopbackServer> server;
    asio::steady_timer up(io, 300ms);
    up.async_wait([&](std::error_code) { server.emplace(cp::LoopbackServer::Mode::client_closes_first, port); });
    const auto start = std::chrono::steady_clock::now();
    auto sockets = connect_many(io, client, cp::Endpoint::loopback_v4(port), 100);
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(sockets.size() == 100);
    int connected = 0;
    for (auto& s : sockets) connected += s.has_value() ? 1 : 0;
    CHECK(connected == 100);
    CHECK(took >= 300ms);
    CHECK(took < 10s);  // a third of the sequential 30 s, on a noisy machine
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: an io_context run by 4 threads, one shared rotation, stops from another thread", "[asio][threads]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry> client{
        cp::FixedPortRotation{free_range(600)}, cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 20}}};
    asio::io_context io(4);
    std::stop_source stop;
    std::atomic<int> connected{0}, cancelled{0}, other{0};
    std::vector<std::optional<Result>> kept(400);
    std::mutex kept_mutex;
    for (int i = 0; i < 400; ++i)
      asio::co_spawn(
          io,
          [&, i, ex = io.get_executor()]() -> asio::awaitable<void> {
            auto s = i % 4 == 0 ? co_await cp::asio::async_connect(ex, client, server.endpoint(), stop.get_token(),
                                                                   asio::use_awaitable)
                                : co_await cp::asio::async_connect(ex, client, server.endpoint(), asio::use_awaitable);
            if (s) {
              ++connected;
            } else if (s.error().condition() == cp::Errc::cancelled) {
              ++cancelled;
            } else {
              ++other;
            }
            std::lock_guard lock(kept_mutex);
            kept[static_cast<std::size_t>(i)].emplace(std::move(s));
          },
          asio::detached);
    std::vector<std::jthread> runners;
    for (int t = 0; t < 4; ++t) runners.emplace_back([&] { io.run_for(60s); });
    stop.request_stop();
    runners.clear();
    CHECK(connected + cancelled == 400);
    CHECK(other == 0);
    CHECK(connected >= 300);  // the 300 without a stop_token
    std::set<std::uint16_t> ports;
    for (auto& k : kept)
      if (k && *k) ports.insert((*k)->socket().local_endpoint().port());
    CHECK(ports.size() == static_cast<std::size_t>(connected.load()));
    for (auto& k : kept)
      if (k && *k) (*k)->close_reset();  // no TIME_WAITs left for later tests
    kept.clear();
    CHECK(client.bind_policy().snapshot().in_use == 0);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio and blocking drivers: the same loopback scenarios give the same events", "[asio][parity]") {
  const auto closed = cp::Endpoint::loopback_v4(test_support::free_port_block(1));
  cp::LoopbackServer server(cp::LoopbackServer::Mode::server_closes_first);
  // A rotation over two ports, one of them held by a socket bound elsewhere: the same seed makes
  // both drivers try the ports in the same order, so both meet the busy one at the same step.
  const auto range = free_range(2);
  cp::NativeSystem sys;
  cp::Socket holder(sys.open_socket(cp::Family::ipv4, false).value());
  REQUIRE_FALSE(sys.bind(holder.native_handle(), cp::Endpoint::any_v4(range.first())));
  using Client =
      cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::NativeSystem, Recorder>;
  const auto make = [&](std::vector<cp::AttemptEvent>& events) {
    return Client{{.bind = cp::FixedPortRotation{range, {.cooldown = 0ms, .seed = 11, .use_census = false}},
                   .retry = cp::FixedDelayRetry{{.delay = 20ms, .max_attempts = 3}},
                   .observer = Recorder{&events}}};
  };
  for (const cp::Endpoint& to : {closed, server.endpoint()}) {
    std::vector<cp::AttemptEvent> blocking_events, async_events;
    Client blocking = make(blocking_events), async = make(async_events);
    auto b = blocking.connect(to);
    if (b) b->close_reset();  // its port is free again for the other run
    asio::io_context io;
    std::optional<Result> a;
    cp::asio::async_connect(io.get_executor(), async, to, [&](Result r) { a.emplace(std::move(r)); });
    io.run_for(10s);
    REQUIRE(a);
    CHECK(a->has_value() == b.has_value());
    CHECK(test_support::event_lines(async_events) == test_support::event_lines(blocking_events));
    // Seed 11 meets the busy port first: a rebind is part of both streams.
    CHECK(std::any_of(async_events.begin(), async_events.end(), [](const cp::AttemptEvent& e) {
      return e.step == cp::Step::bind && e.action == cp::Action::rebind;
    }));
    CHECK(async_events.size() >= (to == closed ? 3u : 1u));
  }
}
