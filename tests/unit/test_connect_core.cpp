// The decision core driven by hand through its closed protocol (poll() a command, handle() an
// event), with no driver at all; then the same scenarios through the blocking driver over the
// fake system: the observer streams must match.
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
using Kind = cp::Command::Kind;

// The next command, which must be of `kind`.
template <class C>
cp::Command expect(C& core, Kind kind) {
  const cp::Command c = core.poll();
  REQUIRE(static_cast<int>(c.kind) == static_cast<int>(kind));
  return c;
}
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

  cp::Command c = expect(core, Kind::open);
  REQUIRE(c.plan->local.has_value());
  CHECK(*c.remote == server);
  const auto first_port = c.plan->local->port();
  core.handle(cp::Failed{c.id, cp::Step::bind, cp::make_system_error(EADDRINUSE)});  // rebind
  c = expect(core, Kind::open);
  CHECK(c.plan->local->port() != first_port);       // the busy port rests
  CHECK(expect(core, Kind::wait).limit == D(10s));  // in flight: the attempt's timeout
  core.handle(cp::Failed{c.id, cp::Step::connect, cp::make_system_error(ECONNREFUSED)});
  CHECK(expect(core, Kind::wait).limit == D(70ms));  // the retry pause
  core.handle(cp::Woke{});
  c = expect(core, Kind::open);
  core.handle(cp::Connected{c.id});
  const cp::Command done = expect(core, Kind::done);
  CHECK(done.won);
  CHECK(done.id == c.id);
  auto lease = core.take_lease();
  CHECK(lease != nullptr);
  CHECK(core.attempts() == 3);
  REQUIRE(by_core.size() == 3);
  lease->on_close(cp::CloseKind::reset);
  CHECK(bind.snapshot().in_use == 0);

  // The blocking driver, the same scenario over the fake system: the same events.
  cp::ManualTimer timer2;
  cp::FakeSystem sys;
  sys.script(cp::Call::bind, {cp::make_system_error(EADDRINUSE)});
  sys.script(cp::Call::connect, {cp::make_system_error(ECONNREFUSED)});
  std::vector<cp::AttemptEvent> by_driver;
  cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder> conn{
      {.bind = rotation(timer2),
       .retry = cp::FixedDelayRetry{{.delay = 70ms}},
       .system = sys,
       .options = {.timer = &timer2},
       .observer = Recorder{&by_driver}}};
  REQUIRE(conn.connect(server));
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
  cp::Command c = expect(core, Kind::open);
  core.handle(cp::Failed{c.id, cp::Step::connect, cp::make_system_error(ECONNREFUSED)});
  expect(core, Kind::wait);
  core.handle(cp::Woke{});
  c = expect(core, Kind::open);
  core.handle(cp::Failed{c.id, cp::Step::connect, cp::make_system_error(ECONNREFUSED)});
  CHECK_FALSE(expect(core, Kind::done).won);
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
  expect(refused, Kind::done);  // before any attempt, for any of them
  CHECK(refused.attempts() == 0);
  CHECK(refused.take_error().condition() == cp::Errc::invalid_argument);

  const cp::Endpoint two[] = {server, second};
  NoBindCore next(bind, retry, errors, options, observer, two);
  cp::Command c = expect(next, Kind::open);
  next.handle(cp::Failed{c.id, cp::Step::connect, cp::make_system_error(ECONNREFUSED)});
  c = expect(next, Kind::open);
  CHECK(*c.remote == second);
  next.handle(cp::Failed{c.id, cp::Step::connect, cp::make_system_error(ECONNREFUSED)});
  expect(next, Kind::wait);
  next.handle(cp::Stopped{});  // stopped during the wait
  expect(next, Kind::done);
  const cp::NetError stopped = next.take_error();
  CHECK(stopped.condition() == cp::Errc::cancelled);
  CHECK(stopped.step() == cp::Step::wait);
  CHECK_THAT(stopped.detail(), Contains("while waiting to retry after"));

  NoBindCore early(bind, retry, errors, options, observer, two);
  early.handle(cp::Stopped{});
  expect(early, Kind::done);
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
  const cp::Command open = expect(a, Kind::open);
  CHECK(expect(a, Kind::wait).limit == D(300ms));
  a.handle(cp::Woke{});
  CHECK(expect(a, Kind::close).id == open.id);  // the core closes what timed out, with a reset
  expect(a, Kind::done);
  const cp::NetError ea = a.take_error();
  CHECK(ea.code() == std::errc::timed_out);
  CHECK_THAT(ea.detail(), Contains("no answer within 300 ms"));

  const cp::FixedDelayRetry bounded{{.delay = 10ms, .max_attempts = 1, .deadline = 120ms}};
  cp::ConnectCore<cp::NoBind, cp::FixedDelayRetry, cp::DefaultErrorPolicy> b(bind, bounded, errors, options, observer,
                                                                             to);
  timer.advance(20ms);
  expect(b, Kind::open);
  CHECK(expect(b, Kind::wait).limit == D(100ms));
  b.handle(cp::Woke{});
  expect(b, Kind::close);
  expect(b, Kind::done);
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
  expect(core, Kind::wait);
  CHECK(core.attempts() == 0);
  REQUIRE(events.size() == 1);
  CHECK(events[0].condition == cp::Errc::local_ports_exhausted);
  held.lease->on_close(cp::CloseKind::normal);  // now it rests 5 s
  core.handle(cp::Woke{});
  CHECK(expect(core, Kind::wait).limit == D(5s));  // exactly the rest left, not the policy's 10 ms
}

TEST_CASE("core: what the core closes keeps its lease until the close command is done, and a stop closes with a reset",
          "[core]") {
  cp::ManualTimer timer;
  auto bind = rotation(timer);
  const cp::FixedDelayRetry retry{{.delay = 10ms}};
  const cp::DefaultErrorPolicy errors;
  const cp::ConnectorOptions options{.timer = &timer};
  std::vector<cp::AttemptEvent> events;
  Recorder observer{&events};
  const cp::Endpoint to[] = {server};
  {
    Core core(bind, retry, errors, options, observer, to);
    const cp::Command open = expect(core, Kind::open);
    expect(core, Kind::wait);
    core.handle(cp::Stopped{});
    CHECK(bind.snapshot().in_use == 1);  // the socket is still open: the port is not free yet
    CHECK(expect(core, Kind::close).id == open.id);
    expect(core, Kind::done);  // the close was done: its port went back
    CHECK(bind.snapshot().in_use == 0);
    CHECK(bind.snapshot().cooling == 0);  // a reset leaves no TIME_WAIT to wait for
    CHECK(core.take_error().condition() == cp::Errc::cancelled);
  }
  {  // torn down mid-attempt (a driver gone): the lease goes back with the core
    Core core(bind, retry, errors, options, observer, to);
    expect(core, Kind::open);
    CHECK(bind.snapshot().in_use == 1);
  }
  CHECK(bind.snapshot().in_use == 0);
}

TEST_CASE("core: a race's losers are closed by command, each seen by the observer, before done", "[core][race]") {
  cp::ManualTimer timer;
  auto bind = rotation(timer);
  const cp::NoRetry retry;
  const cp::DefaultErrorPolicy errors;
  const cp::ConnectorOptions options{.attempt_delay = 250ms, .timer = &timer};
  std::vector<cp::AttemptEvent> events;
  Recorder observer{&events};
  const cp::HostPort name = *cp::HostPort::parse("race.example.com:7000");
  const cp::Endpoint v6 = cp::Endpoint::loopback_v6(7000);
  cp::ConnectCore<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, Recorder> race(bind, retry, errors,
                                                                                             options, observer, name);
  race.enable_race();
  CHECK(expect(race, Kind::look_up).lookup_limit == 10s);
  race.handle(
      cp::Answered{{cp::Family::ipv6, std::vector{v6}}, cp::FamilyAnswer{cp::Family::ipv4, std::vector{second}}});
  const cp::Command a = expect(race, Kind::open);
  CHECK(expect(race, Kind::wait).limit == D(250ms));  // the next address's turn
  CHECK(*a.remote == v6);
  race.handle(cp::Woke{});
  const cp::Command b = expect(race, Kind::open);
  CHECK(*b.remote == second);
  timer.advance(100ms);
  const cp::Command w = expect(race, Kind::wait);
  CHECK(w.limit == D(9900ms));  // no address left to start: the first racer's deadline
  race.handle(cp::Connected{b.id});
  CHECK(expect(race, Kind::close).id == a.id);
  CHECK(bind.snapshot().in_use == 2);  // the winner's and the loser's, until the loser is closed
  const cp::Command done = expect(race, Kind::done);
  CHECK(done.won);
  CHECK(done.id == b.id);
  CHECK(bind.snapshot().in_use == 1);
  race.take_lease()->on_close(cp::CloseKind::reset);
  CHECK(bind.snapshot().in_use == 0);
  REQUIRE(events.size() == 2);
  CHECK(events[0].connected());
  CHECK(events[1].abandoned);
  CHECK(events[1].remote == v6);
}
