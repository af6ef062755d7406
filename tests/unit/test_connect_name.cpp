// Connecting to a name with the blocking driver: the lookups it makes, the order it tries the
// addresses in, and how lookup failures are decided (fake system, fake resolver, manual timer).
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>
#include "events.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using test_support::Recorder;
using namespace std::chrono_literals;

namespace {
const cp::Endpoint v6 = cp::Endpoint::loopback_v6(0);
const cp::Endpoint v6b = *cp::Endpoint::parse("[::2]:0");
const cp::Endpoint v4 = cp::Endpoint::loopback_v4(0);
const cp::Endpoint v4b = *cp::Endpoint::parse("127.0.0.2:0");
const cp::HostPort login = *cp::HostPort::parse("login.example.com:7000");

std::vector<cp::Endpoint> connects(const cp::FakeSystem& sys) {
  std::vector<cp::Endpoint> to;
  for (const auto& c : sys.calls())
    if (c.call == cp::Call::connect) to.push_back(*c.endpoint);
  return to;
}
}  // namespace

TEST_CASE("name: both families are asked, and the addresses are tried IPv6 first, alternating", "[name]") {
  cp::FakeSystem sys;
  sys.script(cp::Call::connect, {cp::make_system_error(ECONNREFUSED),
                                 cp::make_system_error(ECONNREFUSED),
                                 cp::make_system_error(ECONNREFUSED),
                                 {}});
  cp::FakeResolver names;
  names.answer("login.example.com", cp::Family::ipv6, {.addresses = {v6, v6b}})
      .answer("login.example.com", cp::Family::ipv4, {.addresses = {v4, v4b}});
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{{.system = sys}};
  {
    auto s = client.connect(login, names);
    REQUIRE(s);
    CHECK(s->remote_endpoint().value() == v4b.with_port(7000));
  }
  CHECK(names.asked() == std::vector<std::string>{"login.example.com AAAA", "login.example.com A"});
  CHECK(connects(sys) == std::vector{v6.with_port(7000), v4.with_port(7000), v6b.with_port(7000), v4b.with_port(7000)});
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("name: a numeric HostPort needs no lookup", "[name]") {
  cp::FakeSystem sys;
  cp::FakeResolver names;
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{{.system = sys}};
  auto s = client.connect(*cp::HostPort::parse("127.0.0.1:7000"), names);
  REQUIRE(s);
  CHECK(names.asked().empty());
  CHECK(connects(sys) == std::vector{cp::Endpoint::loopback_v4(7000)});
}

TEST_CASE("name: no address at all is host_not_found, before any socket", "[name]") {
  cp::FakeSystem sys;
  cp::FakeResolver names;  // nothing scripted: no address of either family
  cp::ManualTimer timer;
  cp::Connector<cp::NoBind, cp::ExponentialRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{
      {.retry = cp::ExponentialRetry{{.initial = 10ms, .max_attempts = 3}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = client.connect(login, names);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::host_not_found);
  CHECK(s.error().step() == cp::Step::resolve);
  CHECK_THAT(s.error().message(), Catch::Matchers::Contains("login.example.com:7000 has no IPv6 or IPv4 address"));
  CHECK(sys.opened() == 0);
  CHECK(timer.sleeps().empty());  // host_not_found is not retried
}

TEST_CASE("name: try_again is retried, and the name is looked up again each round", "[name]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FakeResolver names(&timer);
  const auto again = cp::make_winsock_error(cp::winsock::try_again);  // any platform's code will do
  names.answer("login.example.com", cp::Family::ipv6, {.error = again})
      .answer("login.example.com", cp::Family::ipv6, {})
      .answer("login.example.com", cp::Family::ipv4, {.error = again})
      .answer("login.example.com", cp::Family::ipv4, {.addresses = {v4}});
  std::vector<cp::AttemptEvent> events;
  cp::Connector<cp::NoBind, cp::ExponentialRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder> client{
      {.retry = cp::ExponentialRetry{{.initial = 10ms, .max_attempts = 3, .jitter = cp::Jitter::none}},
       .system = sys,
       .options = {.timer = &timer},
       .observer = Recorder{&events}}};
  auto s = client.connect(login, names);
  REQUIRE(s);
  CHECK(names.asked().size() == 4);
  CHECK(timer.sleeps() == std::vector<cp::Timer::duration>{10ms});
  REQUIRE(events.size() == 2);
  CHECK(events[0].step == cp::Step::resolve);
  CHECK(events[0].condition == cp::Errc::try_again);
  CHECK(events[0].action == cp::Action::retry);
  CHECK(events[1].remote == v4.with_port(7000));
  CHECK_FALSE(events[1].action);  // connected
}

TEST_CASE("name: a lookup that does not answer is bounded by the attempt timeout, and does not hold the other family",
          "[name]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FakeResolver names(&timer);
  names.answer("login.example.com", cp::Family::ipv6, {.addresses = {v6}, .delay = 20s})
      .answer("login.example.com", cp::Family::ipv4, {.addresses = {v4}, .delay = 5ms});
  const auto start = timer.now();
  SECTION("racing: IPv4 goes after RFC 8305's resolution delay (50 ms)") {
    cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{
        {.system = sys, .options = {.connect_timeout = 1s, .timer = &timer}}};
    REQUIRE(client.connect(login, names));
    CHECK(timer.now() - start == 55ms);
  }
  SECTION("not racing (attempt_delay 0): both answers are awaited, the silent one for 1 s") {
    cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{
        {.system = sys, .options = {.connect_timeout = 1s, .attempt_delay = 0ms, .timer = &timer}}};
    REQUIRE(client.connect(login, names));
    CHECK(timer.now() - start == 1000ms);  // asked at once: 1 s, not 1 s + 5 ms
  }
  CHECK(connects(sys) == std::vector{v4.with_port(7000)});
}

TEST_CASE("name: a stop before the lookup ends the connect as cancelled, nothing opened", "[name]") {
  cp::FakeSystem sys;
  cp::FakeResolver names;
  names.answer("login.example.com", cp::Family::ipv4, {.addresses = {v4}});
  std::stop_source stop;
  stop.request_stop();
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{{.system = sys}};
  auto s = client.connect(login, names, stop.get_token());
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::cancelled);
  CHECK(s.error().detail().find("stopped by the std::stop_token") != std::string::npos);  // says what stopped it
  CHECK(sys.opened() == 0);
}

// Per family: records, no record (empty), no such name, a failure for now. Neither family with an
// address decides the connect's error: a failure for now anywhere is retried (try_again);
// "host not found" only when a family says the name does not exist and none failed for now.
TEST_CASE("name: how the two families' answers decide a lookup failure, each named in the message", "[name]") {
  const auto again = cp::make_winsock_error(cp::winsock::try_again);  // any platform's code will do
  const auto no_name = cp::make_winsock_error(cp::winsock::host_not_found);
  const auto timed_out = cp::make_system_error(ETIMEDOUT);
  struct Case {
    cp::FakeAnswer aaaa, a;
    cp::Errc condition;
    const char* v6_said;
    const char* v4_said;
  };
  const Case cases[] = {
      {{.error = again}, {}, cp::Errc::try_again, "IPv6 (AAAA): no answer for now", "IPv4 (A): no record"},
      {{}, {.error = again}, cp::Errc::try_again, "IPv6 (AAAA): no record", "IPv4 (A): no answer for now"},
      {{.error = no_name},
       {.error = again},
       cp::Errc::try_again,
       "IPv6 (AAAA): no such name",
       "IPv4 (A): no answer for now"},
      {{.error = timed_out}, {}, cp::Errc::try_again, "IPv6 (AAAA): no answer for now", "IPv4 (A): no record"},
      {{}, {.error = no_name}, cp::Errc::host_not_found, "IPv6 (AAAA): no record", "IPv4 (A): no such name"},
      {{.error = no_name},
       {.error = no_name},
       cp::Errc::host_not_found,
       "IPv6 (AAAA): no such name",
       "IPv4 (A): no such name"},
      {{}, {}, cp::Errc::host_not_found, "IPv6 (AAAA): no record", "IPv4 (A): no record"},
  };
  for (const Case& c : cases) {
    INFO(c.v6_said << "; " << c.v4_said);
    cp::FakeSystem sys;
    cp::FakeResolver names;
    names.answer("login.example.com", cp::Family::ipv6, c.aaaa).answer("login.example.com", cp::Family::ipv4, c.a);
    cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{{.system = sys}};
    auto s = client.connect(login, names);
    REQUIRE_FALSE(s);
    CHECK(s.error().condition() == c.condition);
    CHECK(s.error().step() == cp::Step::resolve);
    const std::string m = s.error().message();
    CHECK_THAT(m, Catch::Matchers::Contains(c.v6_said) && Catch::Matchers::Contains(c.v4_said));
    if (c.condition == cp::Errc::try_again)  // the hint speaks of the name server, not of the peer
      CHECK_THAT(m, Catch::Matchers::Contains("name server") && !Catch::Matchers::Contains("peer"));
    CHECK(sys.opened() == 0);
  }
}

TEST_CASE("name: an IPv6-only name whose AAAA lookup fails for a moment is retried and connects", "[name]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FakeResolver names(&timer);
  const auto again = cp::make_winsock_error(cp::winsock::try_again);
  names.answer("login.example.com", cp::Family::ipv6, {.error = again})
      .answer("login.example.com", cp::Family::ipv6, {.addresses = {v6}})
      .answer("login.example.com", cp::Family::ipv4, {})  // no A record, each time
      .answer("login.example.com", cp::Family::ipv4, {});
  cp::Connector<cp::NoBind, cp::ExponentialRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{
      {.retry = cp::ExponentialRetry{{.initial = 250ms, .max_attempts = 3, .jitter = cp::Jitter::none}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = client.connect(login, names);
  REQUIRE(s);
  CHECK(s->remote_endpoint().value() == v6.with_port(7000));
  CHECK(timer.sleeps() == std::vector<cp::Timer::duration>{250ms});
}
