// User hooks that throw: the observer is the user's code, and a throw from it must reach the
// caller only after everything the connect borrowed is given back (ports to their rotation,
// descriptors closed), and must end the connect at once rather than let it retry on.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <stop_token>
#include <optional>
#include <system_error>
import connpolicy;
import connpolicy.testing;
#include "events.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);

// Throws when an attempt connected (on_success) or failed (otherwise).
struct ThrowingObserver {
  bool on_success = true;
  int* seen;
  void operator()(const cp::AttemptEvent& e) const {
    ++*seen;
    if (e.connected() == on_success) throw std::runtime_error("observer failed");
  }
};

template <class Retry = cp::NoRetry>
using Client = cp::Connector<cp::FixedPortRotation, Retry, cp::DefaultErrorPolicy, cp::FakeSystem, ThrowingObserver>;

cp::FixedPortRotation four_ports() {
  return cp::FixedPortRotation{cp::PortRange::make(40000, 40003).value(), {.use_census = false}};
}
}  // namespace

TEST_CASE("hooks: an observer that throws on a connected attempt leaves no port lent and no socket open", "[hooks]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  int seen = 0;
  Client<> client{
      {.bind = four_ports(), .system = sys, .options = {.timer = &timer}, .observer = ThrowingObserver{true, &seen}}};
  CHECK_THROWS_WITH(client.connect(server), "observer failed");
  CHECK(seen == 1);
  const auto snap = client.bind_policy().snapshot();
  CHECK(snap.in_use == 0);   // the socket was closed on the way out, and its port given back
  CHECK(snap.cooling == 1);  // closed with a FIN: it rests through its TIME_WAIT
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("hooks: an observer that throws on a failure ends the connect at once, everything given back", "[hooks]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::connection_refused, 5);
  int seen = 0;
  Client<cp::FixedDelayRetry> client{{.bind = four_ports(),
                                      .retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 5}},
                                      .system = sys,
                                      .options = {.timer = &timer},
                                      .observer = ThrowingObserver{false, &seen}}};
  CHECK_THROWS_WITH(client.connect(server), "observer failed");
  CHECK(seen == 1);
  CHECK(sys.count(cp::Call::connect) == 1);  // no retry after the hook failed
  CHECK(timer.sleeps().empty());
  CHECK(client.bind_policy().snapshot().in_use == 0);
  CHECK(sys.open_handles() == 0);
}

namespace {
// A rotation whose plan() asks for a stop: the stop then comes while the attempt's connect is
// pending, as a cancel that arrives as the handshake completes.
struct StopWhilePlanning {
  static constexpr bool can_rebind = true;
  cp::FixedPortRotation inner;
  std::stop_source* stop;
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint& remote) {
    stop->request_stop();
    return inner.plan(remote);
  }
  void failed(const cp::BindPlan& plan, const cp::NetError& error) { inner.failed(plan, error); }
};
}  // namespace

// A stop that ends an attempt's wait closes the attempt with a reset: had the handshake completed
// meanwhile, a normal close would leave a TIME_WAIT on a port its rotation takes back as unused.
TEST_CASE("hooks: a stop mid-connect closes the attempt with a reset, and its port comes back unused",
          "[hooks][cancel]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::operation_in_progress);  // pending
  sys.time_out();                                                 // the first wait slice ends unanswered
  std::stop_source stop;
  cp::Connector<StopWhilePlanning, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{
      {.bind = StopWhilePlanning{four_ports(), &stop}, .system = sys, .options = {.timer = &timer}}};
  auto s = client.connect(server, stop.get_token());
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::cancelled);
  CHECK(sys.option_value(cp::FakeSystem::first_handle, cp::SocketOption::linger_reset) == std::optional<int>(1));
  CHECK(sys.open_handles() == 0);
  const auto snap = client.bind_policy().inner.snapshot();
  CHECK(snap.in_use == 0);
  CHECK(snap.cooling == 0);  // reset: no TIME_WAIT to rest through
}

using test_support::HookObserver;

// User code in a hook starts another connect on the same connector, from inside the call: the
// blocking driver holds no lock there (nor does the rotation), so the nested connect runs to its
// end, then the outer one goes on; every port and handle comes back.
TEST_CASE("hooks: an observer that connects again on the same connector, from inside the call", "[hooks]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::connection_refused, 1);  // the outer's first attempt
  std::function<void(const cp::AttemptEvent&)> body = [](const cp::AttemptEvent&) {};
  cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::FakeSystem, HookObserver>
      client{{.bind = four_ports(),
              .retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 2}},
              .system = sys,
              .options = {.timer = &timer},
              .observer = {&body}}};
  std::optional<cp::expected<cp::BasicSocket<cp::FakeSystem>, cp::NetError>> inner;
  int events = 0;
  body = [&](const cp::AttemptEvent&) {
    if (++events == 1) inner.emplace(client.connect(server));
  };
  auto outer = client.connect(server);
  REQUIRE(inner);
  REQUIRE(*inner);
  REQUIRE(outer);
  CHECK(events == 3);  // the outer's refusal, the inner's success, the outer's success
  CHECK(client.bind_policy().snapshot().in_use == 2);
  inner->value().close();
  outer->close();
  CHECK(client.bind_policy().snapshot().in_use == 0);
  CHECK(sys.open_handles() == 0);
}
