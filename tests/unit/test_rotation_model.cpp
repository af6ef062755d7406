// FixedPortRotation against a model of the kernel, driven by seeded random operations: takes,
// normal and reset closes, refused attempts, other programs grabbing and dropping ports, and
// time passing (ManualTimer, FakeCensus). After every step the rotation must agree with the
// model: no port lent twice; no port offered while its own TIME_WAIT holds it; a port another
// program took offered at most once per take (the bind fails, and the rotation surveys); every
// port accounted for; and "all cooling" says how long to wait, after which a port is offered.
// Run twice: with TIME_WAITs reported with their time left (Linux) and without (Windows).
// Deterministic: the same seeds every run, no sockets, no sleeping.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {

const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
constexpr int first_port = 41000, port_count = 12;

cp::Endpoint local(std::uint16_t port) { return cp::Endpoint::loopback_v4(port); }

// What the kernel holds, as the test made it: our own closes' TIME_WAITs and other programs' sockets.
struct Kernel {
  cp::ManualTimer& timer;
  cp::FakeCensus& census;
  std::map<std::uint16_t, cp::Timer::time_point> time_wait_until;
  std::set<std::uint16_t> other_program;

  bool holds_time_wait(std::uint16_t port) const {
    const auto it = time_wait_until.find(port);
    return it != time_wait_until.end() && timer.now() < it->second;
  }
  void time_wait(std::uint16_t port, std::chrono::milliseconds left) {
    census.add_time_wait(local(port), server, left);
    time_wait_until[port] = timer.now() + left;
  }
};

struct Lent {
  cp::BindPlan plan;
  std::uint16_t port;
};

struct Tally {
  int taken = 0, refused_offers_of_others = 0, other_takes = 0, all_cooling = 0;
};

// One run of `steps` random operations; returns what happened, after checking every step.
// time_left_known false: the census lists TIME_WAITs without their time left, as Windows does.
Tally run_model(std::uint64_t seed, int steps, bool time_left_known) {
  std::mt19937_64 random(seed);
  const auto chance = [&](int percent) { return std::uniform_int_distribution<int>(0, 99)(random) < percent; };
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.set_time_wait_slack(300ms);
  census.report_time_left(time_left_known);
  Kernel kernel{timer, census, {}, {}};
  cp::FixedPortRotation rotation{cp::PortRange{first_port, first_port + port_count - 1},
                                 {.seed = seed, .census = &census}};
  rotation.use_clock(timer);
  std::vector<Lent> lent;
  std::set<std::uint16_t> lent_ports;
  Tally tally;

  for (int step = 0; step < steps; ++step) {
    INFO("seed " << seed << ", step " << step);
    const int what = std::uniform_int_distribution<int>(0, 99)(random);
    if (what < 40) {  // take a port
      auto plan = rotation.plan(server);
      if (!plan) {
        REQUIRE(plan.error().condition() == cp::Errc::local_ports_exhausted);
        ++tally.all_cooling;
        if (!lent_ports.empty()) {
          // A lent port comes back at an unknown time: no wait to a TIME_WAIT's end is promised (the
          // retry policy's pace applies); at most a look again, a second away.
          if (plan.error().retry_after()) REQUIRE(*plan.error().retry_after() <= 1s);
        } else {
          REQUIRE(plan.error().retry_after());  // every port rests: it says how long
          REQUIRE(*plan.error().retry_after() > 0ms);
          // With nothing the rotation cannot foresee, waiting as told ends with a port: at once,
          // or after a second, shorter wait when a guessed rest proved short (the kernel's
          // timer runs late) and the census had just been asked (at most every 10 ms). Without
          // the time left it looks every second until the TIME_WAIT ends (the platform's TIME_WAIT and a little).
          const int max_waits =
              time_left_known ? 2 : static_cast<int>(std::chrono::seconds(cp::platform_time_wait).count()) + 10;
          for (int wait = 0; wait < max_waits && !plan && kernel.other_program.empty(); ++wait) {
            REQUIRE(plan.error().retry_after());
            timer.advance(*plan.error().retry_after());
            plan = rotation.plan(server);
          }
          if (kernel.other_program.empty()) REQUIRE(plan);
        }
        if (!plan) continue;
      }
      REQUIRE(plan->local);
      const std::uint16_t port = plan->local->port();
      REQUIRE(port >= first_port);
      REQUIRE(port < first_port + port_count);
      REQUIRE(lent_ports.insert(port).second);      // never lent twice
      REQUIRE_FALSE(kernel.holds_time_wait(port));  // never into our own TIME_WAIT
      if (kernel.other_program.contains(port)) {
        // The bind fails: the rotation could not have known (the other program took it since the
        // last census), but it must not offer it again while the program holds it.
        ++tally.refused_offers_of_others;
        rotation.failed(*plan,
                        cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)).with_local(*plan->local));
        lent_ports.erase(port);
        continue;
      }
      ++tally.taken;
      lent.push_back({std::move(*plan), port});
    } else if (what < 70 && !lent.empty()) {  // close one (normal, reset) or report a refused attempt
      const std::size_t i = std::uniform_int_distribution<std::size_t>(0, lent.size() - 1)(random);
      Lent l = std::move(lent[i]);
      lent.erase(lent.begin() + static_cast<std::ptrdiff_t>(i));
      lent_ports.erase(l.port);
      const int how = std::uniform_int_distribution<int>(0, 9)(random);
      if (how < 6) {  // normal close, we close first: TIME_WAIT, a little longer than the guess
        l.plan.lease->closing_from(local(l.port));
        kernel.time_wait(l.port, cp::platform_time_wait +
                                     std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 1500)(random)));
        l.plan.lease->on_close(cp::CloseKind::normal);
      } else if (how < 9) {
        l.plan.lease->on_close(cp::CloseKind::reset);
      } else {
        rotation.failed(l.plan,
                        cp::NetError(cp::Step::connect, cp::make_system_error(ECONNREFUSED)).with_local(local(l.port)));
      }
    } else if (what < 74) {  // another program takes a free port of the range, or drops one
      const auto port =
          static_cast<std::uint16_t>(first_port + std::uniform_int_distribution<int>(0, port_count - 1)(random));
      if (kernel.other_program.contains(port)) {
        census.remove(port);
        kernel.other_program.erase(port);
      } else if (!lent_ports.contains(port) && !kernel.holds_time_wait(port) && kernel.other_program.size() < 3) {
        census.add(local(port), cp::Endpoint::loopback_v4(9), cp::TcpState::established);
        kernel.other_program.insert(port);
        ++tally.other_takes;
      }
    } else {  // time passes: mostly a little, sometimes a whole TIME_WAIT
      timer.advance(chance(10) ? std::chrono::milliseconds(cp::platform_time_wait)
                               : std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3000)(random)));
    }
    const auto snap = rotation.snapshot();
    REQUIRE(snap.in_use == lent.size());
    REQUIRE(snap.in_use + snap.ready + snap.cooling == static_cast<std::size_t>(port_count));
  }
  for (Lent& l : lent) l.plan.lease->on_close(cp::CloseKind::reset);
  REQUIRE(rotation.snapshot().in_use == 0);
  return tally;
}

}  // namespace

TEST_CASE("rotation model: random takes, closes and other programs, checked after every step",
          "[rotation][model][census]") {
  Tally all;
  const bool time_left_known = GENERATE(true, false);
  INFO("TIME_WAITs reported with their time left (Linux: true, Windows: false): " << time_left_known);
  for (std::uint64_t seed = 1; seed <= 24; ++seed) {
    const Tally t = run_model(seed, 4000, time_left_known);
    all.taken += t.taken;
    all.refused_offers_of_others += t.refused_offers_of_others;
    all.other_takes += t.other_takes;
    all.all_cooling += t.all_cooling;
  }
  // The runs did reach the interesting places (else the checks above prove little).
  CHECK(all.taken > 10000);
  CHECK(all.all_cooling > 100);
  CHECK(all.other_takes > 100);
  // A port another program took is offered at most once per take (then the rotation knows).
  CHECK(all.refused_offers_of_others <= all.other_takes);
  WARN("taken " << all.taken << ", all cooling " << all.all_cooling << ", other programs' takes " << all.other_takes
                << ", offered into them " << all.refused_offers_of_others);
}
