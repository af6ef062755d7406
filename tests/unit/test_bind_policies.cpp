// Bind policies, alone: what each plans, and how FixedPortRotation rotates, cools and shares.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
const cp::Endpoint server6 = cp::Endpoint::loopback_v6(7000);

bool has_option(const cp::BindPlan& plan, cp::SocketOption option, bool required) {
  return std::ranges::any_of(plan.option_list(), [&](const cp::OptionRequest& o) {
    return o.option == option && o.value == 1 && o.required == required;
  });
}

cp::NetError busy_at_bind(const cp::BindPlan& plan) {
  return cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)).with_local(*plan.local);
}

// Takes a port and hands it straight back through its lease, as a socket closing would.
std::uint16_t take_and_close(cp::FixedPortRotation& r, cp::CloseKind kind = cp::CloseKind::normal) {
  auto plan = r.plan(server);
  REQUIRE(plan);
  const std::uint16_t port = plan->local->port();
  plan->lease->on_close(kind);
  return port;
}
}  // namespace

TEST_CASE("NoBind plans nothing: the kernel picks at connect", "[bind]") {
  STATIC_REQUIRE(cp::BindPolicy<cp::NoBind>);
  STATIC_REQUIRE_FALSE(cp::NoBind::can_rebind);
  auto plan = cp::NoBind{}.plan(server);
  REQUIRE(plan);
  CHECK_FALSE(plan->local.has_value());
  CHECK(plan->option_list().empty());
  CHECK_FALSE(plan->lease);
}

TEST_CASE("EphemeralBind binds port 0 of the remote's family, asking for IP_BIND_ADDRESS_NO_PORT", "[bind]") {
  STATIC_REQUIRE(cp::BindPolicy<cp::EphemeralBind>);
  auto plan = cp::EphemeralBind{}.plan(server);
  REQUIRE(plan);
  CHECK(plan->local == cp::Endpoint::any_v4(0));
  CHECK(has_option(*plan, cp::SocketOption::bind_address_no_port, /*required=*/false));
  CHECK(cp::EphemeralBind{}.plan(server6).value().local == cp::Endpoint::any_v6(0));

  const cp::EphemeralBind from{cp::Endpoint::parse("127.0.0.2:999").value()};
  CHECK(from.plan(server).value().local == cp::Endpoint::parse("127.0.0.2:0").value());
  auto mismatch = from.plan(server6);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().condition() == cp::Errc::address_family_not_supported);
  CHECK_THAT(mismatch.error().message(), Contains("different families"));
}

TEST_CASE("FixedPort always plans its port, reuse_address adds SO_REUSEADDR", "[bind]") {
  STATIC_REQUIRE(cp::BindPolicy<cp::FixedPort>);
  constexpr cp::FixedPort fixed{40000};
  STATIC_REQUIRE(fixed.port() == 40000);
  for (int i = 0; i < 3; ++i) CHECK(fixed.plan(server).value().local == cp::Endpoint::any_v4(40000));
#ifdef _WIN32  // an exclusive bind: no other socket's SO_REUSEADDR can take the port over
  CHECK(has_option(fixed.plan(server).value(), cp::SocketOption::exclusive_address, true));
  CHECK(fixed.plan(server).value().option_list().size() == 1);
#else  // Linux binds are exclusive already
  CHECK(fixed.plan(server).value().option_list().empty());
#endif
  constexpr cp::FixedPort reusing{40000, {.reuse_address = true}};
  CHECK(has_option(reusing.plan(server).value(), cp::SocketOption::reuse_address, true));
  CHECK(cp::FixedPort{40000}.plan(server6).value().local == cp::Endpoint::any_v6(40000));
}

TEST_CASE("FixedPort::make refuses ports outside 1-65535", "[bind]") {
  for (long bad : {0L, -1L, 65536L, 100000L}) {
    auto f = cp::FixedPort::make(bad);
    REQUIRE_FALSE(f);
    CHECK(f.error().code() == cp::Errc::invalid_argument);
    CHECK_THAT(f.error().message(), Contains("1-65535"));
  }
  CHECK(cp::FixedPort::make(1).value().port() == 1);
  CHECK(cp::FixedPort::make(65535, {.source = cp::Endpoint::loopback_v4(0)}).value().plan(server).value().local ==
        cp::Endpoint::loopback_v4(65535));
}

TEST_CASE("PortRange: run-time and text forms say what is wrong", "[bind][ports]") {
  constexpr cp::PortRange r{40000, 40009};
  STATIC_REQUIRE(r.size() == 10);
  STATIC_REQUIRE(r.contains(40009));
  STATIC_REQUIRE_FALSE(r.contains(40010));
  CHECK(r.to_string() == "40000-40009");
  CHECK(cp::PortRange::parse("40000-40009").value() == r);
  CHECK(cp::PortRange::parse("5000").value().size() == 1);
  CHECK(cp::PortRange::parse("5000").value().to_string() == "5000");
  for (const char* bad : {"", "-", "1-", "-5", "a-b", "10-1", "0-10", "1-70000", "1--2", "1-2-3", " 1-2", "123456"}) {
    INFO(bad);
    auto p = cp::PortRange::parse(bad);
    REQUIRE_FALSE(p);
    CHECK(p.error().code() == cp::Errc::invalid_argument);
  }
  CHECK_THAT(cp::PortRange::make(10, 1).error().message(), Contains("greater than the last"));
  CHECK_THAT(cp::PortRange::make(0, 10).error().message(), Contains("ports are 1-65535"));
}

TEST_CASE("rotation: invalid run-time ranges are invalid_argument", "[bind][rotation]") {
  auto r = cp::FixedPortRotation::make(40009, 40000);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == cp::Errc::invalid_argument);
  CHECK_FALSE(cp::FixedPortRotation::make(0, 10));
  CHECK_FALSE(cp::FixedPortRotation::make(1, 65536));
  CHECK(cp::FixedPortRotation::make(40000, 40000).value().range().size() == 1);
}

TEST_CASE("rotation: every port once, in an order that cannot be guessed but replays with its seed",
          "[bind][rotation][security]") {
  cp::ManualTimer timer;
  auto order_for = [&](std::uint64_t seed) {
    cp::FixedPortRotation r{cp::PortRange{40000, 40009}, {.seed = seed, .use_census = false}};
    r.use_clock(timer);
    std::vector<std::uint16_t> order;
    std::vector<cp::BindPlan> held;
    for (int i = 0; i < 10; ++i) {
      auto plan = r.plan(server);
      REQUIRE(plan);
      CHECK(plan->local->is_unspecified());
      order.push_back(plan->local->port());
      held.push_back(std::move(*plan));
    }
    return order;
  };
  const auto order = order_for(42);
  CHECK(std::set<std::uint16_t>(order.begin(), order.end()).size() == 10);  // each port once
  CHECK(order_for(42) == order);                                            // a seed replays
  std::set<std::vector<std::uint16_t>> orders;
  std::set<std::uint16_t> firsts;
  int sequential_steps = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const auto o = order_for(seed);
    orders.insert(o);
    firsts.insert(o[0]);
    for (std::size_t i = 1; i < o.size(); ++i) sequential_steps += o[i] == o[i - 1] + 1 ? 1 : 0;
  }
  CHECK(orders.size() == 50);            // no two seeds give the same order
  CHECK(firsts.size() >= 6);             // the first port is spread
  CHECK(sequential_steps < 50 * 9 / 3);  // the next port is mostly not "last + 1" (a ring would be 9 of 9)
}

TEST_CASE("rotation: when all ports are held, it says so at once", "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation r{cp::PortRange{40000, 40002}, {.use_census = false}};
  r.use_clock(timer);
  std::vector<cp::BindPlan> held;
  for (int i = 0; i < 3; ++i) held.push_back(r.plan(server).value());
  auto none = r.plan(server);
  REQUIRE_FALSE(none);
  CHECK(none.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK(none.error().code() == cp::LibraryError::all_ports_cooling);
  CHECK_THAT(none.error().message(), Contains("all 3 ports of 40000-40002 are held by open sockets"));
  CHECK_FALSE(none.error().retry_after());
  CHECK(r.snapshot().in_use == 3);
}

// A lent port comes back when its socket closes: unknown when, often soon. While any port is
// lent, the error promises no wait to the end of a TIME_WAIT (the retry policy's pace applies).
TEST_CASE("rotation: ports lent and cooling: no wait promised, and a port back from a reset is lent at once",
          "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation r{cp::PortRange{40000, 40003}, {.use_census = false}};
  r.use_clock(timer);
  take_and_close(r);  // two ports in TIME_WAIT after normal closes
  take_and_close(r);
  auto lent_a = r.plan(server).value();  // two lent to open sockets
  auto lent_b = r.plan(server).value();
  auto none = r.plan(server);
  REQUIRE_FALSE(none);
  CHECK(none.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK_FALSE(none.error().retry_after());  // not "61.9 s": a lent port may come back in 100 ms
  CHECK_THAT(none.error().message(), Contains("all 4 ports of 40000-40003 are cooling down") &&
                                         Contains("lent to open sockets (2)") &&
                                         Contains("a lent port may come back sooner"));
  timer.advance(100ms);
  lent_a.lease->on_close(cp::CloseKind::reset);  // no TIME_WAIT: ready again at once
  auto again = r.plan(server);
  REQUIRE(again);
  CHECK(again->local->port() == lent_a.local->port());
  lent_b.lease->on_close(cp::CloseKind::reset);
  again->lease->on_close(cp::CloseKind::reset);
}

TEST_CASE("rotation: a closed port cools for TIME_WAIT, all cooling gives the exact wait", "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.seed = 7, .use_census = false}};
  r.use_clock(timer);
  const auto first = take_and_close(r);
  timer.advance(10s);
  const auto second = take_and_close(r);
  CHECK(first != second);
  auto cooling = r.plan(server);
  REQUIRE_FALSE(cooling);
  CHECK(cooling.error().condition() == cp::Errc::local_ports_exhausted);
  REQUIRE(cooling.error().retry_after());
  CHECK(*cooling.error().retry_after() == std::chrono::milliseconds(cp::platform_time_wait) - 10s);
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(cp::platform_time_wait - 10s);  // 50 s on Linux
  CHECK_THAT(cooling.error().message(),
             Contains("port " + std::to_string(first) + " frees in " + std::to_string(left.count()) + ".0 s"));
  const auto snap = r.snapshot();
  CHECK(snap.cooling == 2);
  CHECK(snap.ready == 0);
  CHECK(snap.next_ready_in == left);

  timer.advance(left);  // the first port has rested a full TIME_WAIT
  CHECK(r.plan(server).value().local->port() == first);
}

TEST_CASE("rotation: a just-released port waits while longer-rested ones are ready", "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation r{cp::PortRange{40000, 40019}, {.cooldown = 0ms, .seed = 3, .use_census = false}};
  r.use_clock(timer);
  std::vector<cp::BindPlan> all;
  for (int i = 0; i < 20; ++i) all.push_back(r.plan(server).value());
  std::vector<std::uint16_t> released;
  for (auto& p : all) {
    released.push_back(p.local->port());
    p.lease->on_close(cp::CloseKind::normal);
  }
  // Each pick is among the 8 longest-rested ready ports, so 10 picks come from the 17 released first.
  const std::set<std::uint16_t> oldest(released.begin(), released.begin() + 17);
  std::vector<cp::BindPlan> again;
  for (int i = 0; i < 10; ++i) {
    again.push_back(r.plan(server).value());
    CHECK(oldest.contains(again.back().local->port()));
  }
}

TEST_CASE("rotation: busy failures cool, other failures do not", "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.cooldown = 5s, .seed = 1, .use_census = false}};
  r.use_clock(timer);
  auto busy = r.plan(server).value();
  r.failed(busy, busy_at_bind(busy));
  auto refused = r.plan(server).value();
  r.failed(refused, cp::NetError(cp::Step::connect, cp::make_system_error(ECONNREFUSED)).with_local(*refused.local));
  // The refused port is offered again at once; the busy one rests 5 s.
  CHECK(r.plan(server).value().local->port() == refused.local->port());
  CHECK_FALSE(r.plan(server));
  timer.advance(5s);
  CHECK(r.plan(server).value().local->port() == busy.local->port());
}

TEST_CASE("rotation: connect EADDRNOTAVAIL and Winsock 10048 at connect count as busy", "[bind][rotation][windows]") {
  for (auto code :
       {cp::make_system_error(EADDRNOTAVAIL), cp::make_winsock_error(10048), cp::make_system_error(EACCES)}) {
    INFO(code.message());
    cp::ManualTimer timer;
    cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.cooldown = 5s, .use_census = false}};
    r.use_clock(timer);
    auto plan = r.plan(server).value();
    const auto step = code == cp::Errc::permission_denied ? cp::Step::bind : cp::Step::connect;
    r.failed(plan, cp::NetError(step, code).with_local(*plan.local));
    auto next = r.plan(server);
    REQUIRE_FALSE(next);
    CHECK(next.error().retry_after() == 5s);
  }
}

TEST_CASE("rotation: reuse_address makes closed ports reusable at once, reset close too", "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation reusing{cp::PortRange{40000, 40000}, {.reuse_address = true, .use_census = false}};
  reusing.use_clock(timer);
  auto plan = reusing.plan(server).value();
  CHECK(has_option(plan, cp::SocketOption::reuse_address, true));
  plan.lease->on_close(cp::CloseKind::normal);
  CHECK(reusing.plan(server));  // no cooldown

  cp::FixedPortRotation plain{cp::PortRange{40000, 40000}, {.use_census = false}};

  plain.use_clock(timer);
  take_and_close(plain, cp::CloseKind::reset);  // RST: no TIME_WAIT
  CHECK(plain.plan(server));
  cp::FixedPortRotation released{cp::PortRange{40000, 40000}, {.reuse_address = true, .use_census = false}};
  released.use_clock(timer);
  take_and_close(released, cp::CloseKind::released);  // handle given away: full TIME_WAIT
  CHECK(released.plan(server).error().retry_after() == std::chrono::milliseconds(cp::platform_time_wait));
}

TEST_CASE("rotation: copies share one ring", "[bind][rotation]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation a{cp::PortRange{40000, 40001}, {.use_census = false}};
  a.use_clock(timer);
  cp::FixedPortRotation b = a;
  cp::FixedPortRotation c{cp::PortRange{1, 1}};
  c.use_clock(timer);
  c = b;
  auto x = a.plan(server).value();
  auto y = b.plan(server).value();
  CHECK(x.local->port() != y.local->port());
  CHECK_FALSE(c.plan(server));  // both ports are held through the other copies
  CHECK(c.range() == cp::PortRange{40000, 40001});
}

TEST_CASE("rotation: the lease keeps the ring alive after the policy is gone", "[bind][rotation]") {
  cp::BindPlan plan;
  {
    cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.cooldown = 0ms, .use_census = false}};
    plan = r.plan(server).value();
  }
  plan.lease->on_close(cp::CloseKind::normal);  // must not touch freed memory (ASan checks)
  SUCCEED("closed after the rotation was destroyed");
}

TEST_CASE("rotation: threads sharing a ring never hold one port twice", "[bind][rotation][threads]") {
  cp::ManualTimer timer;
  cp::FixedPortRotation ring{cp::PortRange{40000, 40015}, {.cooldown = 0ms, .use_census = false}};
  ring.use_clock(timer);
  std::mutex mutex;
  std::set<std::uint16_t> live;
  int duplicates = 0, granted = 0, exhausted = 0;
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, copy = ring]() mutable {
      for (int i = 0; i < 2000; ++i) {
        auto plan = copy.plan(server);
        if (!plan) {
          std::lock_guard lock(mutex);
          ++exhausted;
          continue;
        }
        const auto port = plan->local->port();
        {
          std::lock_guard lock(mutex);
          ++granted;
          if (!live.insert(port).second) ++duplicates;  // someone else holds it too
        }
        {
          std::lock_guard lock(mutex);
          live.erase(port);
        }
        plan->lease->on_close(cp::CloseKind::normal);  // only now may the ring lend it again
      }
    });
  }
  threads.clear();
  CHECK(duplicates == 0);
  CHECK(granted + exhausted == 16000);
  CHECK(granted > 0);
  CHECK(ring.snapshot().in_use == 0);
}

TEST_CASE("SourceAddressPool goes round its addresses, of the remote's family, asking NO_PORT", "[bind][pool]") {
  STATIC_REQUIRE(cp::BindPolicy<cp::SourceAddressPool>);
  auto pool = cp::SourceAddressPool::make({cp::Endpoint::parse("127.0.0.2:99").value(), cp::Endpoint::loopback_v6(0),
                                           cp::Endpoint::parse("127.0.0.3:0").value()});
  REQUIRE(pool);
  const auto copy = *pool;  // copies share the turn
  std::vector<cp::Endpoint> v4;
  for (int i = 0; i < 4; ++i) {
    auto plan = (i % 2 ? copy : *pool).plan(server);
    REQUIRE(plan);
    CHECK(plan->local->port() == 0);
    CHECK(has_option(*plan, cp::SocketOption::bind_address_no_port, /*required=*/false));
    v4.push_back(*plan->local);
  }
  for (const auto& e : v4) CHECK(e.is_v4());
  CHECK(std::set<cp::Endpoint>(v4.begin(), v4.end()).size() == 2);  // both v4 addresses used
  CHECK(pool->plan(server6).value().local == cp::Endpoint::loopback_v6(0));
  auto only_v6 = cp::SourceAddressPool::make({cp::Endpoint::loopback_v6(0)}).value();
  CHECK(only_v6.plan(server).error().condition() == cp::Errc::address_family_not_supported);
  CHECK(cp::SourceAddressPool::make({}).error().condition() == cp::Errc::invalid_argument);
}

TEST_CASE("KernelPortRange asks IP_LOCAL_PORT_RANGE (last << 16 | first) and binds nothing", "[bind]") {
  STATIC_REQUIRE(cp::BindPolicy<cp::KernelPortRange>);
  // The system range given, not read: a unit test does not depend on this host's sysctl.
  const cp::KernelPortRange range{cp::PortRange{40000, 40009}, cp::PortRange{32768, 60999}};
  auto plan = range.plan(server);
  REQUIRE(plan);
  CHECK_FALSE(plan->local.has_value());
  REQUIRE(plan->option_list().size() == 1);
  CHECK(plan->option_list()[0].option == cp::SocketOption::local_port_range);
  CHECK(plan->option_list()[0].value == (40009 << 16 | 40000));
  CHECK(plan->option_list()[0].required);
}
