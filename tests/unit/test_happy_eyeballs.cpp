// Happy Eyeballs in the blocking driver, to the millisecond: the fake system times each connect
// on a ManualTimer (route()), so the schedule of a race is exact and no real time passes.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include "events.hpp"
#include "race_schedule.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using test_support::ms_since;
using test_support::Recorder;
using test_support::Start;
using test_support::starts;

namespace {
const cp::HostPort dual = *cp::HostPort::parse("dual.example.com:7000");
const cp::Endpoint v6 = cp::Endpoint::loopback_v6(7000);
const cp::Endpoint v6b = *cp::Endpoint::parse("[::2]:7000");
const cp::Endpoint v4 = cp::Endpoint::loopback_v4(7000);
const cp::Endpoint v4b = *cp::Endpoint::parse("127.0.0.2:7000");
const cp::FakeRoute black_hole{};
const cp::FakeRoute refused_after_30ms{30ms, cp::make_system_error(ECONNREFUSED)};
const cp::FakeRoute connects_after_20ms{20ms, {}};

cp::FakeResolver names_with(std::vector<cp::Endpoint> six, std::vector<cp::Endpoint> four) {
  cp::FakeResolver names;
  names.answer("dual.example.com", cp::Family::ipv6, {.addresses = std::move(six)})
      .answer("dual.example.com", cp::Family::ipv4, {.addresses = std::move(four)});
  return names;
}

template <class Bind = cp::NoBind, class Retry = cp::NoRetry>
using Client = cp::Connector<Bind, Retry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder>;
}  // namespace

TEST_CASE("race: IPv6 starts at 0, IPv4 at 250 ms and wins at 270 ms, and the IPv6 attempt is reset", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, black_hole, timer).route(v4, connects_after_20ms, timer);
  auto names = names_with({v6}, {v4});
  std::vector<cp::AttemptEvent> events;
  Client<> client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  {
    auto s = client.connect(dual, names);
    REQUIRE(s);
    CHECK(s->remote_endpoint().value() == v4);
    CHECK(ms_since(timer, t0) == 270);
    CHECK(starts(sys, t0) == std::vector<Start>{{v6, 0}, {v4, 250}});
    CHECK(sys.open_handles() == 1);  // the IPv6 attempt is closed already
    const auto loser = cp::FakeSystem::first_handle;
    CHECK(sys.option_value(loser, cp::SocketOption::linger_reset) == std::optional<int>(1));
  }
  CHECK(sys.open_handles() == 0);
  REQUIRE(events.size() == 2);  // the winner, then the loser: closed unfinished, no failure of its own
  CHECK(events[0].connected());
  CHECK(events[0].attempt == 2);
  CHECK(events[1].remote == v6);
  CHECK(events[1].abandoned);
  CHECK_FALSE(events[1].action);
}

TEST_CASE("race: when IPv6 is refused at 30 ms, IPv4 starts then, not at its turn", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, refused_after_30ms, timer).route(v4, connects_after_20ms, timer);
  auto names = names_with({v6}, {v4});
  std::vector<cp::AttemptEvent> events;
  Client<> client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE(s);
  CHECK(starts(sys, t0) == std::vector<Start>{{v6, 0}, {v4, 30}});
  CHECK(ms_since(timer, t0) == 50);
  REQUIRE(events.size() == 2);
  CHECK(events[0].condition == cp::Errc::connection_refused);
  CHECK(events[0].action == cp::Action::next_endpoint);
  // Each event says when its attempt started and how long it took, on the connector's Timer.
  CHECK(events[0].started == t0);
  CHECK(events[0].took == 30ms);
  CHECK(events[1].started == t0 + 30ms);
  CHECK(events[1].took == 20ms);
}

TEST_CASE("race: racers in flight together each keep their own start in the observer's events", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  // IPv6 connects at 300 ms, after IPv4 (a black hole) was planned at its turn, 250 ms: IPv6's
  // event must say 0 and 300 ms, not the time the last attempt was planned.
  sys.route(v6, {300ms, {}}, timer).route(v4, black_hole, timer);
  auto names = names_with({v6}, {v4});
  std::vector<cp::AttemptEvent> events;
  Client<> client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE(s);
  REQUIRE(events.size() == 2);  // the winner, then the loser closed unfinished
  CHECK(events[0].remote == v6);
  CHECK(events[0].started == t0);
  CHECK(events[0].took == 300ms);
  CHECK_FALSE(events[0].abandoned);
  CHECK(events[1].remote == v4);
  CHECK(events[1].abandoned);
  CHECK(events[1].condition == cp::Errc::cancelled);
  CHECK_FALSE(events[1].action);
  CHECK(events[1].started == t0 + 250ms);
  CHECK(events[1].took == 50ms);
}

TEST_CASE("race: four black holes start 250 ms apart and each times out on its own clock", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  for (const auto& e : {v6, v4, v6b, v4b}) sys.route(e, black_hole, timer);
  auto names = names_with({v6, v6b}, {v4, v4b});
  std::vector<cp::AttemptEvent> events;
  Client<> client{{.system = sys, .options = {.connect_timeout = 1s, .timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE_FALSE(s);
  CHECK(starts(sys, t0) == std::vector<Start>{{v6, 0}, {v4, 250}, {v6b, 500}, {v4b, 750}});
  CHECK(ms_since(timer, t0) == 1750);  // the last one's second
  CHECK(s.error() == cp::Errc::timed_out);
  CHECK(s.error().attempts() == 4);
  for (const auto& e : {v6, v4, v6b, v4b})
    CHECK_THAT(s.error().message(), Catch::Matchers::Contains(e.to_string() + " wait: "));
  REQUIRE(events.size() == 4);
  CHECK_FALSE(events[0].action);  // others still in flight: the race goes on
  CHECK(events[3].action == cp::Action::give_up);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("race: both refused is one error that names each address and why", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, refused_after_30ms, timer).route(v4, refused_after_30ms, timer);
  auto names = names_with({v6}, {v4});
  Client<> client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{nullptr}}};
  std::vector<cp::AttemptEvent> events;
  client.observer().events = &events;
  auto s = client.connect(dual, names);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::connection_refused);
  const std::string m = s.error().message();
  CHECK_THAT(m, Catch::Matchers::Contains("every address failed: [::1]:7000 connect: "));
  CHECK_THAT(m, Catch::Matchers::Contains("; 127.0.0.1:7000 connect: "));
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("race: attempt_delay 0 turns it off: IPv4 waits for IPv6's timeout", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, black_hole, timer).route(v4, connects_after_20ms, timer);
  auto names = names_with({v6}, {v4});
  Client<> client{{.system = sys,
                   .options = {.connect_timeout = 1s, .attempt_delay = 0ms, .timer = &timer},
                   .observer = Recorder{nullptr}}};
  std::vector<cp::AttemptEvent> events;
  client.observer().events = &events;
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE(s);
  CHECK(starts(sys, t0) == std::vector<Start>{{v6, 0}, {v4, 1000}});
  CHECK(sys.count(cp::Call::wait_any_writable) == 0);
}

TEST_CASE("race: a rotation lends each racer its own port and gets both back, the loser's at once", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, black_hole, timer).route(v4, connects_after_20ms, timer);
  auto names = names_with({v6}, {v4});
  cp::FixedPortRotation rotation{cp::PortRange{40000, 40003}, {.use_census = false}};
  rotation.use_clock(timer);
  Client<cp::FixedPortRotation> client{
      {.bind = rotation, .system = sys, .options = {.timer = &timer}, .observer = Recorder{nullptr}}};
  std::vector<cp::AttemptEvent> events;
  client.observer().events = &events;
  std::set<std::uint16_t> ports;
  {
    auto s = client.connect(dual, names);
    REQUIRE(s);
    for (const auto& c : sys.calls())
      if (c.call == cp::Call::bind) ports.insert(c.endpoint->port());
    CHECK(ports.size() == 2);
    auto during = rotation.snapshot();
    CHECK(during.in_use == 1);   // the winner's
    CHECK(during.cooling == 0);  // the loser's came back as never used
    CHECK_FALSE(s->close_reset());
  }
  auto after = rotation.snapshot();
  CHECK(after.in_use == 0);
  CHECK(after.ready == 4);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("race: an attempt_delay under 10 ms is refused before any socket", "[race]") {
  cp::FakeSystem sys;
  auto names = names_with({v6}, {v4});
  Client<> client{{.system = sys, .options = {.attempt_delay = 5ms}, .observer = Recorder{nullptr}}};
  auto s = client.connect(dual, names);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::invalid_argument);
  CHECK_THAT(s.error().message(), Catch::Matchers::Contains("ConnectorOptions::attempt_delay is 5 ms"));
  CHECK(sys.opened() == 0);
}

TEST_CASE("race: the retry policy applies to the race as a whole, and the name is asked again", "[race]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, refused_after_30ms, timer).route(v4, refused_after_30ms, timer);
  auto names = names_with({v6}, {v4});
  Client<cp::NoBind, cp::FixedDelayRetry> client{{.retry = cp::FixedDelayRetry{{.delay = 100ms, .max_attempts = 2}},
                                                  .system = sys,
                                                  .options = {.timer = &timer},
                                                  .observer = Recorder{nullptr}}};
  std::vector<cp::AttemptEvent> events;
  client.observer().events = &events;
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE_FALSE(s);
  // Round 1: v6 at 0, refused at 30, v4 at 30, refused at 60; wait 100; round 2 at 160.
  CHECK(starts(sys, t0) == std::vector<Start>{{v6, 0}, {v4, 30}, {v6, 160}, {v4, 190}});
  CHECK(timer.sleeps() == std::vector<cp::Timer::duration>{100ms});
  CHECK(names.asked().size() == 4);
  CHECK(s.error().attempts() == 4);
}
