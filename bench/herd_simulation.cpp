// P5, thundering herd: 1000 clients reconnect to a server that has just come back and admits a
// fixed number of connections per tick. Deterministic, in virtual time: no sockets, but the real
// ExponentialRetry schedules, with their real Timer interface reading the simulated clock.
// One row per jitter mode: attempts in all, and the time until every client is in.
//
//   herd_simulation [clients=1000] [admitted_per_tick=50] [tick_ms=10] [seed=1]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <queue>
#include <stop_token>
#include <vector>
import connpolicy;
#include "simulated_time.hpp"

namespace cp = connpolicy;
using bench_support::SimulatedTime;
using namespace std::chrono_literals;

namespace {

struct Result {
  long attempts = 0;
  double seconds_until_all_in = 0;
};

Result simulate(cp::Jitter jitter, int clients, int admitted_per_tick, std::chrono::milliseconds tick,
                std::uint64_t seed) {
  SimulatedTime time;
  const cp::Timer::time_point start = time.now();
  // The AWS-style parameters: base 10 ms, cap 1 s, doubling, no attempt limit.
  std::vector<cp::ExponentialRetry> policies;
  std::vector<cp::ExponentialRetry::schedule_type> schedules;
  policies.reserve(static_cast<std::size_t>(clients));
  schedules.reserve(static_cast<std::size_t>(clients));
  for (int c = 0; c < clients; ++c) {
    policies.emplace_back(cp::ExponentialOptions{.initial = 10ms,
                                                 .multiplier = 2.0,
                                                 .max_delay = 1s,
                                                 .max_attempts = 0,
                                                 .jitter = jitter,
                                                 .seed = seed * 1000003 + static_cast<std::uint64_t>(c) + 1});
    schedules.push_back(policies.back().schedule(time));
  }
  using Event = std::pair<cp::Timer::time_point, int>;  // (attempt time, client)
  std::priority_queue<Event, std::vector<Event>, std::greater<>> pending;
  for (int c = 0; c < clients; ++c) pending.push({start, c});  // all retry as the server returns
  const cp::NetError refused(cp::Step::connect, cp::make_system_error(111 /* ECONNREFUSED */));
  Result r;
  int in = 0;
  for (long ticks = 0; in < clients && ticks < 10'000'000; ++ticks) {  // bounded
    const auto tick_end = start + tick * (ticks + 1);
    int admitted = 0;
    while (!pending.empty() && pending.top().first < tick_end) {
      const auto [when, client] = pending.top();
      pending.pop();
      ++r.attempts;
      if (admitted < admitted_per_tick) {
        ++admitted;
        ++in;
        r.seconds_until_all_in = std::chrono::duration<double>(tick_end - start).count();
        continue;
      }
      time.set(when);
      auto delay = schedules[static_cast<std::size_t>(client)].next_delay(refused);
      pending.push({when + delay.value_or(cp::Timer::duration(1s)), client});
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int clients = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int per_tick = argc > 2 ? std::atoi(argv[2]) : 50;
  const auto tick = std::chrono::milliseconds(argc > 3 ? std::atoi(argv[3]) : 10);
  const std::uint64_t seed = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1;
  std::printf("P5 thundering herd: %d clients, server admits %d per %lld ms tick; ExponentialRetry "
              "10 ms base, x2, 1 s cap; virtual time\n\n",
              clients, per_tick, static_cast<long long>(tick.count()));
  std::printf("| jitter | attempts | attempts / client | time until all in (s) | attempts vs none |\n");
  std::printf("|---|---|---|---|---|\n");
  const Result none = simulate(cp::Jitter::none, clients, per_tick, tick, seed);
  for (auto [name, jitter] :
       {std::pair{"none", cp::Jitter::none}, std::pair{"full", cp::Jitter::full}, std::pair{"equal", cp::Jitter::equal},
        std::pair{"decorrelated", cp::Jitter::decorrelated}}) {
    const Result r = jitter == cp::Jitter::none ? none : simulate(jitter, clients, per_tick, tick, seed);
    std::printf("| %s | %ld | %.2f | %.2f | %.0f %% |\n", name, r.attempts, static_cast<double>(r.attempts) / clients,
                r.seconds_until_all_in, 100.0 * static_cast<double>(r.attempts) / static_cast<double>(none.attempts));
  }
  return 0;
}
