// The Asio driver on loopback: each completion token, each way an attempt ends, each way to
// cancel, and that nothing it opened stays open.
#include <asio.hpp>
#include <asio/experimental/deferred.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "black_hole.hpp"
#include "fd_count.hpp"
#include "time_wait.hpp"
#include "loopback.hpp"
#include "events.hpp"

namespace cp = connpolicy;
using test_support::Recorder;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;
using test_support::open_fd_count;

namespace {
cp::FixedPortRotation rotation_block(int n, cp::RotationOptions options = {}) {
  const int first = test_support::free_port_block(n);
  return cp::FixedPortRotation{cp::PortRange::make(first, first + n - 1).value(), options};
}
}  // namespace

TEST_CASE("asio: a coroutine connects, writes and reads through Asio, the port's lease comes back", "[asio]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server(cp::LoopbackServer::Mode::client_closes_first);
    cp::Connector<cp::FixedPortRotation, cp::NoRetry> client{rotation_block(4)};
    asio::io_context io;
    std::optional<Result> got;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto s = co_await cp::asio::async_connect(io.get_executor(), client, server.endpoint(), asio::use_awaitable);
          if (s) {
            const std::string hello = "hello";
            co_await asio::async_write(*s, asio::buffer(hello), asio::use_awaitable);
          }
          got.emplace(std::move(s));
        },
        asio::detached);
    io.run_for(30s);  // returns when the coroutine ends: the bound is for a slow Wine
    REQUIRE(got);
    REQUIRE(*got);
    CHECK((*got)->holds_lease());
    CHECK(client.bind_policy().snapshot().in_use == 1);
    CHECK((*got)->socket().local_endpoint().port() >= client.bind_policy().range().first());
    (*got)->close();
    CHECK(client.bind_policy().snapshot().in_use == 0);
    CHECK(client.bind_policy().snapshot().cooling == 1);  // a normal close: the port rests
    REQUIRE(server.wait_closed(1));

    std::optional<Result> again;  // a reset close: no TIME_WAIT, so no rest
    cp::asio::async_connect(io.get_executor(), client, server.endpoint(),
                            [&](Result r) { again.emplace(std::move(r)); });
    io.restart();
    io.run_for(30s);
    REQUIRE(again);
    REQUIRE(*again);
    CHECK(client.bind_policy().snapshot().in_use == 1);
    CHECK_FALSE((*again)->close_reset());
    CHECK_FALSE((*again)->holds_lease());
    CHECK(client.bind_policy().snapshot().in_use == 0);
    CHECK(client.bind_policy().snapshot().cooling == 1);  // still only the first port
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: a normal close tells a census-minded rotation its local address", "[asio]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  cp::LoopbackServer server(cp::LoopbackServer::Mode::client_closes_first);
  cp::Connector<cp::FixedPortRotation> client{rotation_block(1)};  // the census is on by default
  asio::io_context io;
  std::optional<Result> got;
  cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&](Result r) { got.emplace(std::move(r)); });
  io.run_for(30s);
  REQUIRE(got);
  REQUIRE(*got);
  (*got)->close();  // TIME_WAIT on our side
  REQUIRE(server.wait_closed(1));
  const auto surveys = client.bind_policy().snapshot().surveys;
  std::this_thread::sleep_for(20ms);  // censuses are at least 10 ms apart
  // Asked for its only port, the rotation looks up exactly that connection's TIME_WAIT, which it
  // can only do knowing the local address the socket gave it at close (else: a whole survey).
  auto plan = client.bind_policy().plan(server.endpoint());
  REQUIRE_FALSE(plan);
  CHECK(plan.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK(client.bind_policy().snapshot().look_ups == 1);
  CHECK(client.bind_policy().snapshot().surveys == surveys);
}

TEST_CASE("asio: a callback, use_future and deferred complete the same way", "[asio]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<cp::EphemeralBind> client;
    asio::io_context io;
    std::optional<Result> by_callback;
    cp::asio::async_connect(io.get_executor(), client, server.endpoint(),
                            [&](Result r) { by_callback.emplace(std::move(r)); });
    std::future<Result> by_future =
        cp::asio::async_connect(io.get_executor(), client, server.endpoint(), asio::use_future);
    auto op = cp::asio::async_connect(io.get_executor(), client, server.endpoint(), asio::experimental::deferred);
    CHECK_FALSE(by_callback);  // never completes inside the initiating call
    std::optional<Result> by_deferred;
    std::move(op)([&](Result r) { by_deferred.emplace(std::move(r)); });
    io.run_for(5s);
    REQUIRE(by_callback);
    REQUIRE(*by_callback);
    REQUIRE(by_deferred);
    REQUIRE(*by_deferred);
    REQUIRE(by_future.wait_for(0s) == std::future_status::ready);
    CHECK(by_future.get().has_value());
    for (int i = 0; i < 200 && server.accepted() < 3; ++i) std::this_thread::sleep_for(10ms);  // its own thread
    CHECK(server.accepted() == 3);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: refused, then retried on the timer until the server comes up", "[asio]") {
  const auto fds = open_fd_count();
  {
    const auto port = test_support::free_port_block(1);
    std::vector<cp::AttemptEvent> events;
    cp::Connector<cp::NoBind, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::NativeSystem, Recorder> client{
        {.retry = cp::FixedDelayRetry{{.delay = 50ms, .max_attempts = 100}}, .observer = Recorder{&events}}};
    asio::io_context io;
    std::optional<cp::LoopbackServer> server;
    asio::steady_timer later(io, 200ms);
    later.async_wait([&](std::error_code) { server.emplace(cp::LoopbackServer::Mode::client_closes_first, port); });
    std::optional<Result> got;
    cp::asio::async_connect(io.get_executor(), client, cp::Endpoint::loopback_v4(port),
                            [&](Result r) { got.emplace(std::move(r)); });
    io.run_for(10s);
    REQUIRE(got);
    REQUIRE(*got);
    REQUIRE(events.size() >= 3);
    CHECK(events.front().condition == cp::Errc::connection_refused);
    CHECK(events.front().action == cp::Action::retry);
    CHECK(events.front().delay == cp::Timer::duration(50ms));
    CHECK(events.back().connected());
    got->value().close();
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: with every port of a rotation cooling, it waits the rotation's retry_after", "[asio]") {
  // The server closes first, so no TIME_WAIT stays on the client's port: only the rotation's
  // own 300 ms rest (no census to lengthen it) keeps the port from being lent.
  cp::LoopbackServer server(cp::LoopbackServer::Mode::server_closes_first);
  std::vector<cp::AttemptEvent> events;
  cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::NativeSystem, Recorder> client{
      {.bind = rotation_block(1, {.cooldown = 300ms, .use_census = false}),
       .retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 5}},
       .observer = Recorder{&events}}};
  asio::io_context io;
  std::optional<Result> first, second;
  cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&](Result r) { first.emplace(std::move(r)); });
  io.run_for(5s);
  REQUIRE(first);
  REQUIRE(*first);
  REQUIRE(server.wait_closed(1));
  first->value().close();  // the only port rests 300 ms
  events.clear();
  io.restart();
  const auto start = std::chrono::steady_clock::now();
  cp::asio::async_connect(io.get_executor(), client, server.endpoint(),
                          [&](Result r) { second.emplace(std::move(r)); });
  io.run_for(10s);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(second);
  INFO((second->has_value() ? std::string("connected") : second->error().message()));
  REQUIRE(events.size() >= 2);
  CHECK(events[0].condition == cp::Errc::local_ports_exhausted);
  CHECK(events[0].action == cp::Action::retry);
  CHECK(events[0].delay > cp::Timer::duration(100ms));  // the rotation's rest, not the policy's 10 ms
  CHECK(events[0].delay <= cp::Timer::duration(300ms));
  CHECK(took >= events[0].delay);  // it really waited that long, on the timer
  CHECK(events.back().connected());
}

TEST_CASE("asio: the per-attempt timeout ends a connect to a listener that drops SYNs", "[asio]") {
  const auto fds = open_fd_count();
  {
    auto hole = test_support::black_hole();
    if (hole.fillers.empty()) {
      WARN("could not fill the accept queue");
      return;
    }
    cp::Connector<cp::NoBind> client{{.options = {.connect_timeout = 200ms}}};
    asio::io_context io;
    std::optional<Result> got;
    const auto start = std::chrono::steady_clock::now();
    cp::asio::async_connect(io.get_executor(), client, hole.endpoint, [&](Result r) { got.emplace(std::move(r)); });
    io.run_for(10s);
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(got);
    REQUIRE_FALSE(*got);
    CHECK(got->error().condition() == cp::Errc::timed_out);
    CHECK(got->error().step() == cp::Step::wait);
    CHECK_THAT(got->error().detail(), Contains("no answer within 200 ms"));
    CHECK(took >= 200ms);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: a terminal cancel mid-connect and mid-wait closes everything and says cancelled", "[asio][cancel]") {
  const auto fds = open_fd_count();
  {
    auto hole = test_support::black_hole();
    if (hole.fillers.empty()) {
      WARN("could not fill the accept queue");
      return;
    }
    const auto closed_port = test_support::free_port_block(1);
    // No census: this is about the connect and the wait (a census, asked off the io thread, can take
    // longer than the 100 ms below under Wine, and a cancel then ends the connect before its attempt).
    cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry> client{
        rotation_block(4, {.use_census = false}), cp::FixedDelayRetry{{.delay = 10s, .max_attempts = 3}}};
    asio::io_context io;
    asio::cancellation_signal mid_connect, mid_wait;
    std::optional<Result> a, b;
    cp::asio::async_connect(
        io.get_executor(), client, hole.endpoint,
        asio::bind_cancellation_slot(mid_connect.slot(), [&](Result r) { a.emplace(std::move(r)); }));
    cp::asio::async_connect(io.get_executor(), client, cp::Endpoint::loopback_v4(closed_port),
                            asio::bind_cancellation_slot(mid_wait.slot(), [&](Result r) { b.emplace(std::move(r)); }));
    asio::steady_timer soon(io, 100ms);
    soon.async_wait([&](std::error_code) {
      mid_connect.emit(asio::cancellation_type::terminal);
      mid_wait.emit(asio::cancellation_type::terminal);
    });
    const auto start = std::chrono::steady_clock::now();
    io.run_for(10s);
    CHECK(std::chrono::steady_clock::now() - start < 5s);  // neither the 10 s timeout nor the 10 s wait
    REQUIRE(a);
    REQUIRE_FALSE(*a);
    CHECK(a->error().condition() == cp::Errc::cancelled);
    CHECK(a->error().step() == cp::Step::wait);
    CHECK_THAT(a->error().message(), Contains("stopped by the operation's cancellation slot"));
    REQUIRE(b);
    REQUIRE_FALSE(*b);
    CHECK(b->error().condition() == cp::Errc::cancelled);
    CHECK_THAT(b->error().detail(),
               Contains("stopped by the operation's cancellation slot while waiting to retry after"));
    CHECK(client.bind_policy().snapshot().in_use == 0);  // both ports came back
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: a std::stop_token from another thread cancels mid-connect", "[asio][cancel]") {
  // With a timeout, and with none (the lone attempt's timer, which a stop cancels, is armed anyway).
  const auto timeout = GENERATE(std::chrono::milliseconds(10s), std::chrono::milliseconds::max());
  const auto fds = open_fd_count();
  {
    auto hole = test_support::black_hole();
    if (hole.fillers.empty()) {
      WARN("could not fill the accept queue");
      return;
    }
    cp::Connector<cp::EphemeralBind> client{{.options = {.connect_timeout = timeout}}};
    asio::io_context io;
    std::stop_source stop;
    std::optional<Result> got;
    cp::asio::async_connect(io.get_executor(), client, hole.endpoint, stop.get_token(),
                            [&](Result r) { got.emplace(std::move(r)); });
    std::jthread stopper([&] {
      std::this_thread::sleep_for(100ms);
      stop.request_stop();
    });
    io.run_for(10s);
    REQUIRE(got);
    REQUIRE_FALSE(*got);
    CHECK(got->error().condition() == cp::Errc::cancelled);
    CHECK_THAT(got->error().message(), Contains("stopped by the std::stop_token"));
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: a bad configuration completes with its error, after the initiating call", "[asio]") {
  cp::Connector<cp::NoBind> client{{.options = {.connect_timeout = std::chrono::milliseconds(-1)}}};
  asio::io_context io;
  std::optional<Result> got;
  cp::asio::async_connect(io.get_executor(), client, cp::Endpoint::loopback_v4(7),
                          [&](Result r) { got.emplace(std::move(r)); });
  CHECK_FALSE(got);
  io.run_for(5s);
  REQUIRE(got);
  REQUIRE_FALSE(*got);
  CHECK(got->error().condition() == cp::Errc::invalid_argument);
}
