// Bad configurations and special addresses: what the library refuses before any syscall, whom
// it blames for a failure, and the promises its comments make. Fake system, manual timer.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using ms = std::chrono::milliseconds;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);

constexpr cp::Endpoint mapped(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  return cp::Endpoint::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}, port);
}

template <class Bind, class Retry = cp::NoRetry>
using FakeConnector = cp::Connector<Bind, Retry, cp::DefaultErrorPolicy, cp::FakeSystem>;

// A connect refused with invalid_argument at the configure step, before any syscall.
template <class Connector>
void check_refused_before_any_syscall(Connector& c, const cp::FakeSystem& sys, const std::string& names) {
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::invalid_argument);
  CHECK(s.error().step() == cp::Step::configure);
  CHECK_THAT(s.error().message(), Contains(names));
  CHECK(sys.calls().empty());
}
}  // namespace

// --- 1. Special addresses in every form -------------------------------------------------------

static_assert(mapped(0, 0, 0, 0, 1).is_unspecified());
static_assert(mapped(127, 0, 0, 9, 1).is_loopback());
static_assert(mapped(224, 0, 0, 1, 1).is_multicast() && mapped(239, 1, 2, 3, 1).is_multicast());
static_assert(mapped(255, 255, 255, 255, 1).is_broadcast());
static_assert(mapped(10, 0, 0, 1, 1).unmapped() == cp::Endpoint::ipv4({10, 0, 0, 1}, 1));
static_assert(!mapped(10, 0, 0, 1, 1).is_unspecified() && !mapped(10, 0, 0, 1, 1).is_loopback() &&
              !mapped(10, 0, 0, 1, 1).is_multicast() && !mapped(10, 0, 0, 1, 1).is_broadcast());
// Only ::ffff:0:0/96 is mapped: ::1 and ::a.b.c.d (the old "compatible" form) are not.
static_assert(!cp::Endpoint::loopback_v6(1).is_v4_mapped() && cp::Endpoint::loopback_v6(1).unmapped().is_v6());
static_assert(!cp::Endpoint::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 224, 0, 0, 1}, 1).is_multicast());

TEST_CASE("bad config: mapped special destinations are refused before any syscall", "[config][address]") {
  for (const cp::Endpoint& remote :
       {mapped(0, 0, 0, 0, 80), mapped(224, 0, 0, 1, 80), mapped(255, 255, 255, 255, 80)}) {
    INFO(remote.to_string());
    CHECK(cp::not_a_destination(remote) != nullptr);
    cp::FakeSystem sys;
    FakeConnector<cp::NoBind> c{{.system = sys}};
    auto s = c.connect(remote);
    REQUIRE_FALSE(s);
    CHECK(s.error() == cp::Errc::invalid_argument);
    CHECK(sys.calls().empty());
  }
  CHECK(cp::not_a_destination(mapped(127, 0, 0, 1, 80)) == nullptr);  // this host, by its mapped name: fine
}

TEST_CASE("bad config: a multicast or broadcast source is refused in any form, and its port goes back",
          "[config][address]") {
  for (const cp::Endpoint& source : {cp::Endpoint::ipv4({224, 0, 0, 1}, 0), mapped(224, 0, 0, 1, 0),
                                     cp::Endpoint::ipv4({255, 255, 255, 255}, 0), mapped(255, 255, 255, 255, 0)}) {
    INFO(source.to_string());
    cp::FakeSystem sys;
    cp::ManualTimer timer;
    FakeConnector<cp::FixedPortRotation> c{
        {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40001}, {.source = source, .use_census = false}},
         .system = sys,
         .options = {.timer = &timer}}};
    auto s = c.connect(source.is_v4() ? server : mapped(127, 0, 0, 1, 7000));
    REQUIRE_FALSE(s);
    CHECK(s.error() == cp::Errc::invalid_argument);
    CHECK(s.error().attempts() == 0);
    CHECK(sys.calls().empty());
    CHECK(c.bind_policy().snapshot().ready == 2);  // nothing cools for it
    auto pool = cp::SourceAddressPool::make({cp::Endpoint::loopback_v4(0), source});
    REQUIRE_FALSE(pool);
    CHECK(pool.error() == cp::Errc::invalid_argument);
  }
}

TEST_CASE("bad config: the census and the rotation read a mapped address as its IPv4 address", "[config][address]") {
  CHECK(cp::same_end(mapped(127, 0, 0, 1, 40000), cp::Endpoint::loopback_v4(40000)));
  CHECK_FALSE(cp::same_end(mapped(127, 0, 0, 1, 40000), cp::Endpoint::loopback_v4(40001)));
  namespace rot = cp::detail::rotation;
  CHECK(rot::overlaps(mapped(127, 0, 0, 1, 40000), cp::Endpoint::loopback_v4(0)));
  CHECK(rot::overlaps(mapped(0, 0, 0, 0, 40000), cp::Endpoint::ipv4({10, 0, 0, 1}, 0)));
  CHECK_FALSE(rot::overlaps(mapped(127, 0, 0, 1, 40000), cp::Endpoint::ipv4({10, 0, 0, 1}, 0)));
  // A dual-stack socket's TIME_WAIT on a rotation port bound to 127.0.0.1 is seen as holding it.
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.add_time_wait(mapped(127, 0, 0, 1, 40000), mapped(127, 0, 0, 1, 7000), 30s);
  cp::FixedPortRotation rotation{cp::PortRange{40000, 40000},
                                 {.source = cp::Endpoint::loopback_v4(0), .census = &census}};
  rotation.use_clock(timer);
  auto plan = rotation.plan(server);
  REQUIRE_FALSE(plan);
  CHECK(plan.error() == cp::Errc::local_ports_exhausted);
}

// --- 2. Settings that mean nothing are refused ---------------------------------------------------

TEST_CASE("bad config: ConnectorOptions out of range are refused before any syscall", "[config][options]") {
  struct Case {
    cp::ConnectorOptions options;
    const char* names;
  };
  for (const Case& k : {Case{{.connect_timeout = -1ms}, "ConnectorOptions::connect_timeout is -1 ms"},
                        Case{{.connect_timeout = 0ms}, "ConnectorOptions::connect_timeout is 0 ms"},
                        Case{{.connect_timeout = ms::min()}, "ConnectorOptions::connect_timeout"},
                        Case{{.max_rebinds = -1}, "ConnectorOptions::max_rebinds is -1"},
                        Case{{.max_rebinds = std::numeric_limits<int>::min()}, "ConnectorOptions::max_rebinds"}}) {
    INFO(k.names);
    cp::FakeSystem sys;
    FakeConnector<cp::NoBind> c{{.system = sys, .options = k.options}};
    check_refused_before_any_syscall(c, sys, k.names);
  }
  // The largest values have one meaning: no limit but the retry deadline, no overflow.
  for (const cp::ConnectorOptions& o :
       {cp::ConnectorOptions{.connect_timeout = ms::max()}, cp::ConnectorOptions{.max_rebinds = 0},
        cp::ConnectorOptions{.max_rebinds = std::numeric_limits<int>::max()}}) {
    cp::FakeSystem sys;
    CHECK(cp::check(o));
    FakeConnector<cp::NoBind> c{{.system = sys, .options = o}};
    CHECK(c.connect(server));
  }
}

TEST_CASE("bad config: a huge connect timeout waits what the retry deadline allows, not forever", "[config][options]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.script(cp::Call::connect, {std::make_error_code(std::errc::operation_in_progress)});
  sys.time_out();  // the peer never answers
  FakeConnector<cp::NoBind, cp::FixedDelayRetry> c{
      {.retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 1, .deadline = 300ms}},
       .system = sys,
       .options = {.connect_timeout = ms::max(), .timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  // The wait was bounded by the deadline (300 ms), not by the saturated timeout.
  CHECK(s.error().code() == cp::make_error_code(cp::LibraryError::deadline_exceeded));
  CHECK(sys.count(cp::Call::wait_writable) == 1);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("bad config: ExponentialOptions out of range are refused, by make() and by the Connector",
          "[config][options]") {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  struct Case {
    cp::ExponentialOptions options;
    const char* names;
  };
  for (const Case& k : {Case{{.initial = -1ms}, "ExponentialOptions::initial is -1 ms"},
                        Case{{.initial = 0ms}, "ExponentialOptions::initial is 0 ms"},
                        Case{{.multiplier = nan}, "ExponentialOptions::multiplier"},
                        Case{{.multiplier = inf}, "ExponentialOptions::multiplier"},
                        Case{{.multiplier = -inf}, "ExponentialOptions::multiplier"},
                        Case{{.multiplier = 0.5}, "ExponentialOptions::multiplier"},
                        Case{{.multiplier = -2.0}, "ExponentialOptions::multiplier"},
                        Case{{.max_delay = -1ms}, "ExponentialOptions::max_delay"},
                        Case{{.initial = 100ms, .max_delay = 50ms}, "less than initial"},
                        Case{{.max_attempts = -1}, "ExponentialOptions::max_attempts is -1"},
                        Case{{.deadline = -1ms}, "ExponentialOptions::deadline is -1 ms"},
                        Case{{.deadline = ms::min()}, "ExponentialOptions::deadline"},
                        Case{{.jitter = static_cast<cp::Jitter>(9)}, "ExponentialOptions::jitter"}}) {
    INFO(k.names);
    auto made = cp::ExponentialRetry::make(k.options);
    REQUIRE_FALSE(made);
    CHECK(made.error() == cp::Errc::invalid_argument);
    CHECK_THAT(made.error().message(), Contains(k.names));
    cp::FakeSystem sys;
    FakeConnector<cp::NoBind, cp::ExponentialRetry> c{{.retry = cp::ExponentialRetry{k.options}, .system = sys}};
    check_refused_before_any_syscall(c, sys, k.names);
    // A schedule made anyway has no undefined behaviour (UBSan watches): waits are not negative.
    const cp::ExponentialRetry policy{k.options};  // schedules point into their policy's options
    cp::ManualTimer timer;
    auto schedule = policy.schedule(timer);
    for (int i = 0; i < 4; ++i) CHECK(schedule.backoff() >= cp::Timer::duration::zero());
  }
}

namespace {
// A policy of a user's own whose defaults mean nothing (its check() says so).
struct RefusingByDefault : cp::NoRetry {
  cp::expected<void, cp::NetError> check() const {
    return cp::unexpected(cp::invalid_option("RefusingByDefault::limit", "is 0: give it a limit"));
  }
};
}  // namespace

TEST_CASE("bad config: a default-constructed connector asks its policies' check() too", "[config][options]") {
  cp::Connector<cp::NoBind, RefusingByDefault, cp::DefaultErrorPolicy, cp::FakeSystem> c;
  REQUIRE(c.configuration_error());
  CHECK_THAT(c.configuration_error()->message(), Contains("RefusingByDefault::limit is 0"));
}

TEST_CASE("bad config: the largest and smallest meaningful ExponentialOptions work", "[config][options]") {
  cp::ManualTimer timer;
  for (const cp::ExponentialOptions& o :
       {cp::ExponentialOptions{.max_attempts = 0, .deadline = ms::max()},
        cp::ExponentialOptions{.multiplier = 1.0, .max_attempts = 3, .deadline = 0ms},
        cp::ExponentialOptions{.initial = ms::max(), .max_delay = ms::max(), .max_attempts = 2}}) {
    REQUIRE(cp::ExponentialRetry::make(o));
    cp::FakeSystem sys;
    sys.fail(cp::Call::connect, std::errc::connection_refused, 3);
    FakeConnector<cp::NoBind, cp::ExponentialRetry> c{
        {.retry = cp::ExponentialRetry{o}, .system = sys, .options = {.timer = &timer}}};
    auto s = c.connect(server);
    // deadline max: never reached, so the retries go on until the connect succeeds (the 4th);
    // deadline 0: gives up before the first wait; two attempts: gives up after the second.
    if (o.deadline == ms::max())
      CHECK(s);
    else
      CHECK_FALSE(s);
    if (o.deadline == 0ms) CHECK(sys.count(cp::Call::connect) == 1);
  }
}

TEST_CASE("bad config: FixedDelayOptions out of range are refused", "[config][options]") {
  struct Case {
    cp::FixedDelayOptions options;
    const char* names;
  };
  for (const Case& k : {Case{{.delay = -1ms}, "FixedDelayOptions::delay is -1 ms"},
                        Case{{.delay = ms::min()}, "FixedDelayOptions::delay"},
                        Case{{.max_attempts = -3}, "FixedDelayOptions::max_attempts is -3"},
                        Case{{.deadline = -5ms}, "FixedDelayOptions::deadline is -5 ms"},
                        Case{{.delay = 0ms, .max_attempts = 0}, "retry without a pause forever"}}) {
    INFO(k.names);
    auto made = cp::FixedDelayRetry::make(k.options);
    REQUIRE_FALSE(made);
    CHECK_THAT(made.error().message(), Contains(k.names));
    cp::FakeSystem sys;
    FakeConnector<cp::NoBind, cp::FixedDelayRetry> c{{.retry = cp::FixedDelayRetry{k.options}, .system = sys}};
    check_refused_before_any_syscall(c, sys, k.names);
  }
  cp::ManualTimer timer;
  CHECK(cp::FixedDelayRetry::make({.delay = 0ms, .max_attempts = 2}));  // bounded: fine
  CHECK(cp::FixedDelayRetry::make({.delay = 0ms, .max_attempts = 0, .deadline = 1s}));
  // deadline max: saturates, so it is never reached (it used to overflow and give up at once).
  cp::FakeSystem sys;
  sys.fail(cp::Call::connect, std::errc::connection_refused, 2);
  FakeConnector<cp::NoBind, cp::FixedDelayRetry> c{
      {.retry = cp::FixedDelayRetry{{.delay = ms::max(), .max_attempts = 0, .deadline = ms::max()}},
       .system = sys,
       .options = {.timer = &timer}}};
  CHECK(c.connect(server));
  CHECK(timer.sleeps().size() == 2);
}

TEST_CASE("bad config: RotationOptions::cooldown out of range is refused, a huge one saturates", "[config][options]") {
  auto made = cp::FixedPortRotation::make(40000, 40003, {.cooldown = -1ms});
  REQUIRE_FALSE(made);
  CHECK_THAT(made.error().message(), Contains("RotationOptions::cooldown is -1 ms"));
  cp::FakeSystem sys;
  FakeConnector<cp::FixedPortRotation> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40003}, {.cooldown = -1ms}}, .system = sys}};
  check_refused_before_any_syscall(c, sys, "RotationOptions::cooldown");
  cp::ManualTimer timer;
  cp::FixedPortRotation huge{cp::PortRange{40000, 40000}, {.cooldown = ms::max(), .use_census = false}};
  huge.use_clock(timer);
  {
    auto plan = huge.plan(server);
    REQUIRE(plan);
    huge.failed(*plan, cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)));
  }
  const auto snap = huge.snapshot();
  CHECK(snap.cooling == 1);
  REQUIRE(snap.next_ready_in);
  CHECK(*snap.next_ready_in > ms(0));  // saturated far in the future, not wrapped into the past
}

TEST_CASE("bad config: time arithmetic saturates at the clock's ends", "[config][options]") {
  const cp::Timer::time_point t{std::chrono::hours(1)};
  CHECK(cp::saturating_add(t, ms::max()) == cp::Timer::time_point::max());
  CHECK(cp::saturating_add(t, std::chrono::hours::max()) == cp::Timer::time_point::max());
  CHECK(cp::saturating_add(t, ms::min()) == cp::Timer::time_point::min());
  CHECK(cp::saturating_add(t, 5ms) == t + 5ms);
  CHECK(cp::saturating_add(cp::Timer::time_point::max(), 1ms) == cp::Timer::time_point::max());
  // Exactly at the edge: the last tick fits, one more does not (the integer path's overflow test).
  const cp::Timer::time_point almost = cp::Timer::time_point::max() - std::chrono::nanoseconds(1);
  CHECK(cp::saturating_add(almost, std::chrono::nanoseconds(1)) == cp::Timer::time_point::max());
  CHECK(cp::saturating_add(almost, std::chrono::nanoseconds(0)) == almost);
  CHECK(cp::saturating_add(cp::Timer::time_point::min() + 1ms, -1ms) == cp::Timer::time_point::min());
  CHECK(cp::saturating_add(t, -2ms) == t - 2ms);
  // Units that are not whole ticks take the floating-point path, with the same answers.
  CHECK(cp::saturating_add(t, std::chrono::duration<double, std::milli>(1.5)) == t + std::chrono::microseconds(1500));
  CHECK(cp::saturating_add(t, std::chrono::duration<double>(1e300)) == cp::Timer::time_point::max());
  CHECK(cp::saturating_duration(ms::max()) == cp::Timer::duration::max());
}

// --- 3. Blame the right party ---------------------------------------------------------------------

TEST_CASE("bad config: a source address not on this host cools no port and is reported at once", "[config][blame]") {
  const cp::Endpoint elsewhere = cp::Endpoint::ipv4({192, 0, 2, 1}, 0);  // TEST-NET-1: on no host
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::bind, std::errc::address_not_available, 100);
  FakeConnector<cp::FixedPortRotation, cp::ExponentialRetry> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.source = elsewhere, .use_census = false}},
       .retry = cp::ExponentialRetry{{.max_attempts = 5}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::address_not_available);
  CHECK(s.error().attempts() == 1);
  CHECK(sys.count(cp::Call::bind) == 1);  // not rebound: another port cannot fix an address
  CHECK(timer.sleeps().empty());          // not retried: waiting cannot either
  CHECK_THAT(s.error().message(), Contains("192.0.2.1"));
  CHECK_THAT(s.error().message(), Contains("is not an address of this host"));
  const auto snap = c.bind_policy().snapshot();
  CHECK(snap.cooling == 0);  // no port blamed
  CHECK(snap.ready == 10);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("bad config: a SourceAddressPool address not on this host is not rebound 64 times", "[config][blame]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::bind, std::errc::address_not_available, 100);
  FakeConnector<cp::SourceAddressPool> c{
      {.bind = cp::SourceAddressPool::make({cp::Endpoint::ipv4({192, 0, 2, 1}, 0)}).value(), .system = sys}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::address_not_available);
  CHECK(sys.count(cp::Call::bind) == 1);
  CHECK_THAT(s.error().message(), Contains("192.0.2.1"));
}

// A pool whose first address is not on this host (a DHCP lease changed): the connect binds the
// pool's next address at once, and the missing one rests, to be tried again after its rest.
TEST_CASE(
    "bad config: a SourceAddressPool skips an address not on this host for its next one, and tries it again later",
    "[config][pool]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::bind, std::errc::address_not_available, 1);  // 192.0.2.1, asked first
  const auto gone = cp::Endpoint::ipv4({192, 0, 2, 1}, 0);
  const auto here = cp::Endpoint::loopback_v4(0);
  FakeConnector<cp::SourceAddressPool> c{
      {.bind = cp::SourceAddressPool::make({gone, here}, {.unavailable_rest = 5s}).value(),
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE(s);
  CHECK(s->local_endpoint().value().address_string() == "127.0.0.1");
  CHECK(sys.count(cp::Call::bind) == 2);
  CHECK(timer.sleeps().empty());  // no wait: the next address at once
  s->close();

  // While 192.0.2.1 rests, plans offer only 127.0.0.1; after its rest it is offered again.
  const auto offered = [&](int plans) {
    std::vector<std::string> out;
    for (int i = 0; i < plans; ++i) out.push_back(c.bind_policy().plan(server).value().local->address_string());
    return out;
  };
  CHECK(offered(4) == std::vector<std::string>(4, "127.0.0.1"));
  timer.advance(4999ms);
  CHECK(offered(2) == std::vector<std::string>(2, "127.0.0.1"));
  timer.advance(1ms);
  const auto after = offered(2);
  CHECK(std::ranges::count(after, "192.0.2.1") == 1);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("bad config: a SourceAddressPool fails only when every address fails, naming each", "[config][pool]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::bind, std::errc::address_not_available, 100);
  FakeConnector<cp::SourceAddressPool> c{
      {.bind = cp::SourceAddressPool::make({cp::Endpoint::ipv4({192, 0, 2, 1}, 0),
                                            cp::Endpoint::ipv4({192, 0, 2, 2}, 0), cp::Endpoint::loopback_v6(0)})
                   .value(),
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::address_not_available);
  CHECK(s.error().step() == cp::Step::bind);
  CHECK(sys.count(cp::Call::bind) == 2);  // each IPv4 address once; ::1 is not of the family
  CHECK(timer.sleeps().empty());
  CHECK_THAT(s.error().message(), Contains("192.0.2.1 (not on this host; tried again in 10000 ms)") &&
                                      Contains("192.0.2.2 (not on this host; tried again in 10000 ms)") &&
                                      !Contains("::1"));
  REQUIRE(s.error().retry_after());
  CHECK(*s.error().retry_after() == 10s);
  CHECK(sys.open_handles() == 0);

  // Within the rest the next connect fails at once, without a bind; after it, both are tried.
  auto again = c.connect(server);
  REQUIRE_FALSE(again);
  CHECK(sys.count(cp::Call::bind) == 2);
  timer.advance(10s);
  auto later = c.connect(server);
  REQUIRE_FALSE(later);
  CHECK(sys.count(cp::Call::bind) == 4);
  CHECK(cp::SourceAddressPool::make({cp::Endpoint::loopback_v4(0)}, {.unavailable_rest = -1ms}).error().condition() ==
        cp::Errc::invalid_argument);
}

TEST_CASE("bad config: the same error at connect keeps its meaning: our port's address pair is taken",
          "[config][blame]") {
  // EADDRNOTAVAIL at connect from a port of ours is the port's fault (busy), so it rotates.
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::address_not_available, 1);
  FakeConnector<cp::FixedPortRotation> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.use_census = false}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE(s);
  CHECK(sys.count(cp::Call::bind) == 2);
  CHECK(c.bind_policy().snapshot().cooling == 1);  // the port whose pair was taken
  CHECK(c.bind_policy().snapshot().in_use == 1);
}

// --- 4. KernelPortRange never silently wider ----------------------------------------------------

TEST_CASE("bad config: KernelPortRange outside the system range is refused before any socket", "[config][range]") {
  cp::FakeSystem sys;
  FakeConnector<cp::KernelPortRange> c{
      {.bind = cp::KernelPortRange{cp::PortRange{20000, 20010}, cp::PortRange{32768, 60999}}, .system = sys}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::invalid_argument);
  CHECK_THAT(s.error().message(), Contains("20000-20010 lies outside the system's ephemeral range 32768-60999"));
  CHECK(sys.calls().empty());
  CHECK(s.error().attempts() == 0);
}

TEST_CASE("bad config: KernelPortRange partly outside uses the overlap, and says which", "[config][range]") {
  const cp::KernelPortRange policy{cp::PortRange{60000, 61010}, cp::PortRange{32768, 60999}};
  CHECK(policy.usable_range().value() == cp::PortRange{60000, 60999});
  cp::FakeSystem sys;
  FakeConnector<cp::KernelPortRange> c{{.bind = policy, .system = sys}};
  auto s = c.connect(server);
  REQUIRE(s);
  CHECK(sys.option_value(s->native_handle(), cp::SocketOption::local_port_range) == (60999 << 16 | 60000));
  const cp::KernelPortRange inside{cp::PortRange{40000, 40009}, cp::PortRange{32768, 60999}};
  CHECK(inside.usable_range().value() == cp::PortRange{40000, 40009});
}

// --- 5. Documented promises hold ------------------------------------------------------------------

TEST_CASE("bad config: attempts() counts attempts, and a failure before any is 0", "[config][promise]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FixedPortRotation rotation{cp::PortRange{40000, 40001}, {.use_census = false}};
  rotation.use_clock(timer);
  FakeConnector<cp::FixedPortRotation> holder{{.bind = rotation, .system = sys, .options = {.timer = &timer}}};
  auto a = holder.connect(server);
  auto b = holder.connect(server);
  REQUIRE(a);
  REQUIRE(b);
  auto none = holder.connect(server);  // every port held by a live socket: no syscall, no attempt
  REQUIRE_FALSE(none);
  CHECK(none.error() == cp::Errc::local_ports_exhausted);
  CHECK(none.error().attempts() == 0);
  CHECK_THAT(none.error().message(), !Contains("after"));
  sys.fail(cp::Call::connect, std::errc::connection_refused, 3);
  FakeConnector<cp::NoBind, cp::FixedDelayRetry> three{
      {.retry = cp::FixedDelayRetry{{.delay = 1ms, .max_attempts = 3}}, .system = sys, .options = {.timer = &timer}}};
  auto refused = three.connect(server);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().attempts() == 3);
  CHECK_THAT(refused.error().message(), Contains("after 3 attempts"));
}
