// RFC 8305's resolution delay in the blocking driver, to the millisecond: AAAA and A are asked
// at once (FakeResolver::resolve_both), each answer comes at its scripted delay on the
// ManualTimer, and ConnectCore decides when the race begins and when a late family joins it.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <stop_token>
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
const cp::Endpoint v4 = cp::Endpoint::loopback_v4(7000);
const cp::FakeRoute black_hole{};
const cp::FakeRoute connects_after_20ms{20ms, {}};
const cp::FakeRoute refused_after_10ms{10ms, cp::make_system_error(ECONNREFUSED)};

// AAAA answers `six_after` late with `six`; A at once with IPv4's loopback.
cp::FakeResolver late_aaaa(cp::ManualTimer& timer, std::chrono::milliseconds six_after,
                           std::vector<cp::Endpoint> six = {v6}) {
  cp::FakeResolver names(&timer);
  names.answer("dual.example.com", cp::Family::ipv6, {.addresses = std::move(six), .delay = six_after})
      .answer("dual.example.com", cp::Family::ipv4, {.addresses = {v4}});
  return names;
}

using Client = cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder>;
using Quiet = cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem>;
}  // namespace

TEST_CASE("resolution delay: AAAA 30 ms late is waited for, IPv6 starts at 30 and IPv4 at 280", "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, black_hole, timer).route(v4, connects_after_20ms, timer);
  auto names = late_aaaa(timer, 30ms);
  std::vector<cp::AttemptEvent> events;
  Client client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  {
    auto s = client.connect(dual, names);
    REQUIRE(s);
    CHECK(s->remote_endpoint().value() == v4);
    CHECK(starts(sys, t0) == std::vector<Start>{{v6, 30}, {v4, 280}});
    CHECK(ms_since(timer, t0) == 300);
  }
  CHECK(names.asked() == std::vector<std::string>{"dual.example.com AAAA", "dual.example.com A"});
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("resolution delay: AAAA 80 ms late, IPv4 starts at 50 and IPv6 joins the race at its turn (300)",
          "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, connects_after_20ms, timer).route(v4, black_hole, timer);
  auto names = late_aaaa(timer, 80ms);
  std::vector<cp::AttemptEvent> events;
  Client client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  {
    auto s = client.connect(dual, names);
    REQUIRE(s);
    CHECK(s->remote_endpoint().value() == v6);
    CHECK(starts(sys, t0) == std::vector<Start>{{v4, 50}, {v6, 300}});
    CHECK(ms_since(timer, t0) == 320);
    CHECK(sys.open_handles() == 1);  // the IPv4 attempt is closed (reset) already
  }
  CHECK(sys.open_handles() == 0);
  REQUIRE(events.size() == 2);  // the winner, then IPv4's attempt closed unfinished
  CHECK(events[0].connected());
  CHECK(events[1].remote == v4);
  CHECK(events[1].abandoned);
}

TEST_CASE("resolution delay: IPv4 refused at 60 while AAAA is 80 ms late, the race waits for it, IPv6 at 80",
          "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, connects_after_20ms, timer).route(v4, refused_after_10ms, timer);
  auto names = late_aaaa(timer, 80ms);
  std::vector<cp::AttemptEvent> events;
  Client client{{.system = sys, .options = {.timer = &timer}, .observer = Recorder{&events}}};
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE(s);
  CHECK(starts(sys, t0) == std::vector<Start>{{v4, 50}, {v6, 80}});
  CHECK(ms_since(timer, t0) == 100);
  REQUIRE(events.size() == 2);
  CHECK(events[0].condition == cp::Errc::connection_refused);
  CHECK_FALSE(events[0].action);  // the race goes on: an answer is still to come
  CHECK(events[1].connected());
}

TEST_CASE("resolution delay: IPv4 refused, then AAAA has nothing: one error, at the AAAA answer", "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v4, refused_after_10ms, timer);
  auto names = late_aaaa(timer, 80ms, {});
  Quiet client{{.system = sys, .options = {.timer = &timer}}};
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::connection_refused);
  CHECK(s.error().remote_endpoint() == v4);
  CHECK(s.error().attempts() == 1);
  CHECK(ms_since(timer, t0) == 80);
  CHECK(starts(sys, t0) == std::vector<Start>{{v4, 50}});
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("resolution delay: a stop while the answers are out ends the connect as cancelled, nothing opened",
          "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  cp::FakeResolver only_aaaa(&timer);  // A has no address: the connect waits for AAAA alone
  only_aaaa.answer("dual.example.com", cp::Family::ipv6, {.addresses = {v6}, .delay = 20s});
  std::stop_source stop;
  Quiet client{{.system = sys, .options = {.timer = &timer}}};
  stop.request_stop();
  auto s = client.connect(dual, only_aaaa, stop.get_token());
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::cancelled);
  CHECK(s.error().step() == cp::Step::resolve);
  CHECK(sys.opened() == 0);
}

TEST_CASE("resolution delay: 0 ms starts IPv4 as soon as it answers", "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v6, connects_after_20ms, timer).route(v4, black_hole, timer);
  auto names = late_aaaa(timer, 30ms);
  Quiet client{{.system = sys, .options = {.resolution_delay = 0ms, .timer = &timer}}};
  const auto t0 = timer.now();
  REQUIRE(client.connect(dual, names));
  CHECK(starts(sys, t0) == std::vector<Start>{{v4, 0}, {v6, 250}});
}

TEST_CASE("resolution delay: IPv4 refused, then the late IPv6 refused too: one error naming both", "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  sys.route(v4, refused_after_10ms, timer).route(v6, refused_after_10ms, timer);
  auto names = late_aaaa(timer, 80ms);
  Quiet client{{.system = sys, .options = {.timer = &timer}}};
  const auto t0 = timer.now();
  auto s = client.connect(dual, names);
  REQUIRE_FALSE(s);
  CHECK(starts(sys, t0) == std::vector<Start>{{v4, 50}, {v6, 80}});
  CHECK(s.error().attempts() == 2);
  CHECK_THAT(s.error().message(), Catch::Matchers::Contains("every address failed: " + v4.to_string() + " connect: "));
  CHECK_THAT(s.error().message(), Catch::Matchers::Contains("; " + v6.to_string() + " connect: "));
  CHECK(sys.open_handles() == 0);
}

namespace {
// A resolver of one's own whose lookups never hand over an answer (breaking LookupsInFlight's
// word): the connect must end, not wait forever.
struct SilentLookups {
  int* asked;
  std::optional<cp::FamilyAnswer> next(cp::Timer::time_point) {
    ++*asked;
    return std::nullopt;
  }
};
struct SilentResolver {
  int asked = 0;
  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort&, cp::Family,
                                                                std::chrono::milliseconds, std::stop_token) {
    return std::vector<cp::Endpoint>{};
  }
  SilentLookups resolve_both(const cp::HostPort&, std::chrono::milliseconds, std::stop_token) { return {&asked}; }
};
static_assert(cp::BothFamiliesResolver<SilentResolver>);
}  // namespace

TEST_CASE("resolution delay: lookups that never hand over an answer end the connect, not hang it", "[race][name]") {
  cp::ManualTimer timer;
  cp::FakeSystem sys;
  SilentResolver silent;
  Quiet client{{.system = sys, .options = {.timer = &timer}}};
  auto s = client.connect(dual, silent);
  REQUIRE_FALSE(s);
  CHECK(s.error().step() == cp::Step::resolve);
  CHECK_THAT(s.error().message(), Catch::Matchers::Contains("the lookup gave no answer"));
  CHECK(silent.asked == 2);  // once per family, then each is taken as failed
  CHECK(sys.opened() == 0);
}
