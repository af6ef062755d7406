// The Asio driver when the user's code or the io_context goes away mid-operation: an observer
// that throws, an io_context destroyed with connects pending. Every port goes back to its
// rotation and every descriptor is closed.
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <vector>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "black_hole.hpp"
#include "fd_count.hpp"
#include "loopback.hpp"
#include "events.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;
using test_support::open_fd_count;

namespace {
cp::FixedPortRotation rotation_block(int n) {
  const int first = test_support::free_port_block(n);
  return cp::FixedPortRotation{cp::PortRange::make(first, first + n - 1).value(), {.use_census = false}};
}

struct ThrowOnConnect {
  void operator()(const cp::AttemptEvent& e) const {
    if (e.connected()) throw std::runtime_error("observer failed");
  }
};
}  // namespace

// 16 connects mid-connect (a listener that drops SYNs) and 8 in a retry wait (a closed port),
// then the io_context is destroyed with all 24 pending: the handlers are never called, and the
// rotation has every port back.
TEST_CASE("asio: an io_context destroyed with connects pending gives every port back", "[asio][hooks]") {
  const auto fds = open_fd_count();
  {
    auto hole = test_support::black_hole();
    if (hole.fillers.empty()) {
      WARN("could not fill the accept queue");
      return;
    }
    const auto closed = cp::Endpoint::loopback_v4(test_support::free_port_block(1));
    cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry> client{
        {.bind = rotation_block(32),
         .retry = cp::FixedDelayRetry{{.delay = 10s, .max_attempts = 3}},
         .options = {.connect_timeout = 10s}}};
    int completed = 0;
    {
      asio::io_context io;
      for (int i = 0; i < 16; ++i)
        cp::asio::async_connect(io.get_executor(), client, hole.endpoint, [&](Result) { ++completed; });
      for (int i = 0; i < 8; ++i)
        cp::asio::async_connect(io.get_executor(), client, closed, [&](Result) { ++completed; });
      io.run_for(300ms);
      CHECK(client.bind_policy().snapshot().in_use == 16);  // the ones mid-connect
    }
    CHECK(completed == 0);
    CHECK(client.bind_policy().snapshot().in_use == 0);
  }
  CHECK(open_fd_count() == fds);
}

// An observer that throws when the connect succeeds: the exception leaves io_context::run(), the
// handler is not called, and the socket it would have had is closed with its port given back
// (once the io_context has run the operation's last handlers, or is destroyed).
TEST_CASE("asio: an observer that throws leaves run() with its exception, everything given back", "[asio][hooks]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, cp::NativeSystem, ThrowOnConnect> client{
        {.bind = rotation_block(4), .options = {.connect_timeout = 5s}, .observer = ThrowOnConnect{}}};
    bool called = false;
    {
      asio::io_context io;
      cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&](Result) { called = true; });
      CHECK_THROWS_WITH(io.run_for(5s), "observer failed");
      io.restart();
      io.run_for(100ms);  // the cancelled attempt timer's handler, which held the operation's state
    }
    CHECK_FALSE(called);
    const auto snap = client.bind_policy().snapshot();
    CHECK(snap.in_use == 0);
    CHECK(snap.cooling == 1);  // closed with a FIN: it rests through its TIME_WAIT
    REQUIRE(server.wait_closed(1));
  }
  CHECK(open_fd_count() == fds);
}

// A socket closed through socket().close() (a FIN) and then close_reset(): the port is given back
// once, as closed normally (it rests through its TIME_WAIT), not kept lent for good.
TEST_CASE("asio: close_reset() after socket().close() gives the port back", "[asio][hooks]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<cp::FixedPortRotation> client{{.bind = rotation_block(4), .options = {.connect_timeout = 5s}}};
    asio::io_context io;
    std::optional<Result> got;
    cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&](Result r) { got.emplace(std::move(r)); });
    io.run_for(5s);
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK(client.bind_policy().snapshot().in_use == 1);
    (*got)->socket().close();
    (*got)->close_reset();
    CHECK_FALSE((*got)->holds_lease());
    const auto snap = client.bind_policy().snapshot();
    CHECK(snap.in_use == 0);
    CHECK(snap.cooling == 1);
    REQUIRE(server.wait_closed(1));
  }
  CHECK(open_fd_count() == fds);
}

using test_support::HookObserver;

// User code in a hook starts another connect on the same connector, from inside the call: the
// Asio driver holds no lock there, so the new operation starts, both complete, and every port and
// descriptor comes back.
TEST_CASE("asio: an observer that starts another connect on the same connector", "[asio][hooks]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const cp::Endpoint refusing = test_support::refusing_endpoint();
    std::function<void(const cp::AttemptEvent&)> body = [](const cp::AttemptEvent&) {};
    cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::NativeSystem, HookObserver>
        client{{.bind = rotation_block(4),
                .retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 2}},
                .observer = {&body}}};
    asio::io_context io;
    std::optional<Result> outer, inner;
    int events = 0;
    body = [&](const cp::AttemptEvent& e) {
      if (++events == 1)
        cp::asio::async_connect(io.get_executor(), client, server.endpoint(),
                                [&](Result r) { inner.emplace(std::move(r)); });
      (void)e;
    };
    cp::asio::async_connect(io.get_executor(), client, refusing, [&](Result r) { outer.emplace(std::move(r)); });
    io.run_for(20s);
    REQUIRE(outer);
    REQUIRE(inner);
    CHECK_FALSE(*outer);
    CHECK(outer->error().condition() == cp::Errc::connection_refused);
    REQUIRE(*inner);
    CHECK(client.bind_policy().snapshot().in_use == 1);  // the inner socket's
    CHECK_FALSE((*inner)->close_reset());
    CHECK(client.bind_policy().snapshot().in_use == 0);
    CHECK(events == 3);  // two refused rounds, and the inner connect
  }
  CHECK(open_fd_count() == fds);
}
