// The decision core driven by hand, with scripted outcomes and no driver at all; then the same
// scenarios through the blocking driver over the fake system: the observer streams must match.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>
#include "events.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using test_support::Recorder;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using D = cp::Timer::duration;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
const cp::Endpoint second = cp::Endpoint::loopback_v4(7001);

using test_support::event_lines;

cp::FixedPortRotation rotation(cp::ManualTimer& timer) {
  cp::FixedPortRotation r{cp::PortRange{40000, 40009}, {.seed = 7, .use_census = false}};
  r.use_clock(timer);  // a core is driven here without a Connector, which would hand it over
  return r;
}
using Core = cp::ConnectCore<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, Recorder>;
}  // namespace

TEST_CASE("core: busy port, refused, connected: rebind, wait, attempt, lease", "[core]") {
  cp::ManualTimer timer;
  auto bind = rotation(timer);
  const cp::FixedDelayRetry retry{{.delay = 70ms}};
  const cp::DefaultErrorPolicy errors;
  const cp::ConnectorOptions options{.timer = &timer};
  std::vector<cp::AttemptEvent> by_core;
  Recorder observer{&by_core};
  const cp::Endpoint to[] = {server};
  Core core(bind, retry, errors, options, observer, to);

  REQUIRE(core.start() == cp::Next::attempt);
  REQUIRE(core.prepare(false) == cp::Next::connect);
  REQUIRE(core.plan().local.has_value());
  CHECK(core.attempt_timeout().limit == 10s);
  const auto first_port = core.plan().local->port();
  REQUIRE(core.failed(cp::Step::bind, cp::make_system_error(EADDRINUSE)) == cp::Next::attempt);  // rebind
  REQUIRE(core.prepare(false) == cp::Next::connect);
  CHECK(core.plan().local->port() != first_port);  // the busy port rests
  REQUIRE(core.failed(cp::Step::connect, cp::make_system_error(ECONNREFUSED)) == cp::Next::wait);
  CHECK(core.delay() == D(70ms));
  REQUIRE(core.waited(true) == cp::Next::attempt);
  REQUIRE(core.prepare(false) == cp::Next::connect);
  auto lease = core.connected();
  CHECK(lease != nullptr);
  CHECK(core.succeeded());
  CHECK(core.attempts() == 3);
  REQUIRE(by_core.size() == 3);
  lease->on_close(cp::CloseKind::reset);

  // The blocking driver, the same scenario over the fake system: the same events.
  cp::ManualTimer timer2;
  cp::FakeSystem sys;
  sys.script(cp::Call::bind, {cp::make_system_error(EADDRINUSE)});
  sys.script(cp::Call::connect, {cp::make_system_error(ECONNREFUSED)});
  std::vector<cp::AttemptEvent> by_driver;
  cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder> c{
      rotation(timer2), cp::FixedDelayRetry{{.delay = 70ms}}, {}, sys, {.timer = &timer2}, Recorder{&by_driver}};
  REQUIRE(c.connect(server));
  CHECK(event_lines(by_driver) == event_lines(by_core));
  CHECK(timer2.sleeps() == std::vector<D>{70ms});
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("core: the retry policy's limit ends it, and the give-up text says why", "[core]") {
  cp::ManualTimer timer;
  cp::NoBind bind;
  const cp::FixedDelayRetry retry{{.delay = 10ms, .max_attempts = 2}};
  const cp::DefaultErrorPolicy errors;
  const cp::ConnectorOptions options{.timer = &timer};
  cp::NoObserver observer;
  const cp::Endpoint to[] = {server};
  cp::ConnectCore<cp::NoBind, cp::FixedDelayRetry, cp::DefaultErrorPolicy> core(bind, retry, errors, options, observer,
                                                                                to);
  REQUIRE(core.start() == cp::Next::attempt);
  REQUIRE(core.prepare(false) == cp::Next::connect);
  REQUIRE(core.failed(cp::Step::connect, cp::make_system_error(ECONNREFUSED)) == cp::Next::wait);
  REQUIRE(core.waited(true) == cp::Next::attempt);
  REQUIRE(core.prepare(false) == cp::Next::connect);
  REQUIRE(core.failed(cp::Step::connect, cp::make_system_error(ECONNREFUSED)) == cp::Next::done);
  CHECK_FALSE(core.succeeded());
  const cp::NetError e = core.take_error();
  CHECK(e.condition() == cp::Errc::connection_refused);
  CHECK(e.attempts() == 2);
  CHECK_THAT(e.detail(), Contains("gave up: "));
}

TEST_CASE("core: refused endpoints, next endpoint, stop before an attempt and during a wait", "[core]") {
  cp::ManualTimer timer;
  cp::NoBind bind;
  const cp::FixedDelayRetry retry{{.delay = 10ms}};
  const cp::DefaultErrorPolicy errors;
  const cp::ConnectorOptions options{.timer = &timer};
  cp::NoObserver observer;
  using NoBindCore = cp::ConnectCore<cp::NoBind, cp::FixedDelayRetry, cp::DefaultErrorPolicy>;

  const cp::Endpoint bad[] = {server, cp::Endpoint::any_v4(7000)};
  NoBindCore refused(bind, retry, errors, options, observer, bad);
  REQUIRE(refused.start() == cp::Next::done);  // before any attempt, for any of them
  CHECK(refused.attempts() == 0);
  CHECK(refused.take_error().condition() == cp::Errc::invalid_argument);

  const cp::Endpoint two[] = {server, second};
  NoBindCore next(bind, retry, errors, options, observer, two);
  REQUIRE(next.start() == cp::Next::attempt);
  REQUIRE(next.prepare(false) == cp::Next::connect);
  REQUIRE(next.failed(cp::Step::connect, cp::make_system_error(ECONNREFUSED)) == cp::Next::attempt);
  REQUIRE(next.prepare(false) == cp::Next::connect);
  CHECK(next.remote() == second);
  REQUIRE(next.failed(cp::Step::connect, cp::make_system_error(ECONNREFUSED)) == cp::Next::wait);
  REQUIRE(next.waited(false) == cp::Next::done);  // stopped during the wait
  const cp::NetError stopped = next.take_error();
  CHECK(stopped.condition() == cp::Errc::cancelled);
  CHECK(stopped.step() == cp::Step::wait);
  CHECK_THAT(stopped.detail(), Contains("while waiting to retry after"));

  NoBindCore early(bind, retry, errors, options, observer, two);
  REQUIRE(early.start() == cp::Next::attempt);
  REQUIRE(early.prepare(true) == cp::Next::done);
  CHECK(early.attempts() == 0);
  CHECK(early.take_error().condition() == cp::Errc::cancelled);
}

TEST_CASE("core: a timeout is ETIMEDOUT, or deadline_exceeded when the deadline bounded the wait", "[core]") {
  cp::ManualTimer timer;
  cp::NoBind bind;
  const cp::DefaultErrorPolicy errors;
  cp::NoObserver observer;
  const cp::Endpoint to[] = {server};
  const cp::ConnectorOptions options{.connect_timeout = 300ms, .timer = &timer};

  const cp::FixedDelayRetry plain{{.delay = 10ms, .max_attempts = 1}};
  cp::ConnectCore<cp::NoBind, cp::FixedDelayRetry, cp::DefaultErrorPolicy> a(bind, plain, errors, options, observer,
                                                                             to);
  REQUIRE(a.start() == cp::Next::attempt);
  REQUIRE(a.prepare(false) == cp::Next::connect);
  CHECK(a.attempt_timeout().limit == 300ms);
  CHECK_FALSE(a.attempt_timeout().deadline_bound);
  REQUIRE(a.timed_out() == cp::Next::done);
  const cp::NetError ea = a.take_error();
  CHECK(ea.code() == std::errc::timed_out);
  CHECK_THAT(ea.detail(), Contains("no answer within 300 ms"));

  const cp::FixedDelayRetry bounded{{.delay = 10ms, .max_attempts = 1, .deadline = 120ms}};
  cp::ConnectCore<cp::NoBind, cp::FixedDelayRetry, cp::DefaultErrorPolicy> b(bind, bounded, errors, options, observer,
                                                                             to);
  REQUIRE(b.start() == cp::Next::attempt);
  timer.advance(20ms);
  REQUIRE(b.prepare(false) == cp::Next::connect);
  CHECK(b.attempt_timeout().limit == 100ms);
  CHECK(b.attempt_timeout().deadline_bound);
  REQUIRE(b.timed_out() == cp::Next::done);
  CHECK(b.take_error().code() == cp::LibraryError::deadline_exceeded);
}

TEST_CASE("core: every port cooling waits the rotation's retry_after, with no attempt counted", "[core]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation bind{cp::PortRange{40000, 40000}, {.cooldown = 5s, .use_census = false}};
  bind.use_clock(timer);
  const cp::FixedDelayRetry retry{{.delay = 10ms, .max_attempts = 5}};
  const cp::DefaultErrorPolicy errors;
  const cp::ConnectorOptions options{.timer = &timer};
  std::vector<cp::AttemptEvent> events;
  Recorder observer{&events};
  const cp::Endpoint to[] = {server};
  auto held = bind.plan(server).value();  // the only port, lent elsewhere
  Core core(bind, retry, errors, options, observer, to);
  REQUIRE(core.start() == cp::Next::attempt);
  REQUIRE(core.prepare(false) == cp::Next::wait);
  CHECK(core.attempts() == 0);
  REQUIRE(events.size() == 1);
  CHECK(events[0].condition == cp::Errc::local_ports_exhausted);
  held.lease->on_close(cp::CloseKind::normal);  // now it rests 5 s
  REQUIRE(core.waited(true) == cp::Next::attempt);
  REQUIRE(core.prepare(false) == cp::Next::wait);
  CHECK(core.delay() == D(5s));  // exactly the rest left, not the policy's 10 ms
}
