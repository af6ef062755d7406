// P5b, a fleet and an outage: 10 000 clients each call once a second (a connect with retries);
// the server is down for 10 s, then admits a fixed number of attempts per tick. Deterministic, in
// virtual time: no sockets, but the real ExponentialRetry schedules and the real RetryBudget (one
// per client, shared by that client's calls, as a process shares one), driven through the same
// calls the decision core makes (next_delay on a failure, report_success on a success).
// Per jitter mode, with and without the budget: attempts during the outage, the peak attempts per
// second after it, calls that failed, and how long the calls begun before recovery take to end.
//
//   fleet_simulation [clients=10000] [admitted_per_tick=200] [seed=1] [svg=path]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <queue>
#include <stop_token>
#include <string>
#include <vector>
import connpolicy;
#include "simulated_time.hpp"

namespace cp = connpolicy;
using bench_support::SimulatedTime;
using namespace std::chrono_literals;
using Clock = cp::Timer::time_point;

namespace {

struct Setup {
  int clients = 10000, admitted_per_tick = 200;
  std::uint64_t seed = 1;
  cp::Timer::duration tick = 10ms, period = 1s, outage_begin = 5s, outage_end = 15s, end = 45s;
};
constexpr std::size_t buckets = 450;  // 100 ms each, for the picture

struct Row {
  long attempts_in_outage = 0, peak_per_second_after = 0, calls = 0, failed = 0, failed_by_budget = 0;
  double backlog_seconds = 0;
  std::vector<long> per_bucket = std::vector<long>(buckets, 0);
};

double seconds(cp::Timer::duration d) { return std::chrono::duration<double>(d).count(); }

// One run. Policy: ExponentialRetry or Budgeted<ExponentialRetry>; make(c) gives client c's.
template <class Policy, class Make>
Row simulate(const Setup& s, Make make) {
  SimulatedTime time;
  const Clock t0 = time.now();
  std::vector<Policy> policies;
  for (int c = 0; c < s.clients; ++c) policies.push_back(make(c));
  struct Call {
    int client;
    Clock began;
    typename Policy::schedule_type schedule;
  };
  std::vector<Call> calls;
  struct Event {
    Clock when;
    long call;  // -1 - client: that client's next call begins
    bool operator>(const Event& o) const { return when > o.when; }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  std::uint64_t rng = s.seed;
  for (int c = 0; c < s.clients; ++c) {  // each client's phase within the period, seeded
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    events.push(
        {t0 + cp::Timer::duration(static_cast<cp::Timer::duration::rep>((rng >> 11) % s.period.count())), -1L - c});
  }
  const cp::NetError refused(cp::Step::connect, cp::make_system_error(111 /* ECONNREFUSED */));
  Row r;
  Clock last_old_call_end = t0 + s.outage_end;
  for (Clock tick_end = t0 + s.tick; tick_end <= t0 + s.end; tick_end += s.tick) {  // bounded by s.end
    const bool down = tick_end > t0 + s.outage_begin && tick_end <= t0 + s.outage_end;
    int admitted = 0;
    while (!events.empty() && events.top().when < tick_end) {
      const auto [when, id] = events.top();
      events.pop();
      time.set(when);
      long call = id;
      if (id < 0) {  // a new call, and the client's next one a period later
        const int client = static_cast<int>(-1 - id);
        events.push({when + s.period, id});
        calls.push_back(Call{client, when, policies[static_cast<std::size_t>(client)].schedule(time)});
        call = static_cast<long>(calls.size()) - 1;
        ++r.calls;
      }
      Call& c = calls[static_cast<std::size_t>(call)];
      const auto since = when - t0;
      ++r.per_bucket[std::min(buckets - 1, static_cast<std::size_t>(since / 100ms))];
      if (since >= s.outage_begin && since < s.outage_end) ++r.attempts_in_outage;
      const bool old = c.began < t0 + s.outage_end;
      if (!down && admitted < s.admitted_per_tick) {
        ++admitted;
        cp::report_success(c.schedule);
        if (old) last_old_call_end = std::max(last_old_call_end, tick_end);
        continue;
      }
      auto delay = c.schedule.next_delay(refused);
      if (delay) {
        events.push({when + *delay, call});
        continue;
      }
      ++r.failed;
      if (delay.error() == cp::GiveUp::retry_budget) ++r.failed_by_budget;
      if (old) last_old_call_end = std::max(last_old_call_end, when);
    }
  }
  r.backlog_seconds = seconds(last_old_call_end - (t0 + s.outage_end));
  for (std::size_t b = static_cast<std::size_t>(s.outage_end / 100ms); b + 10 <= buckets; ++b) {
    long second = 0;
    for (std::size_t i = b; i < b + 10; ++i) second += r.per_bucket[i];
    r.peak_per_second_after = std::max(r.peak_per_second_after, second);
  }
  return r;
}

cp::ExponentialOptions call_options(cp::Jitter jitter, std::uint64_t seed, int client) {
  // Each call: 50 ms base, doubling, 2 s cap, given up after 20 s.
  return {.initial = 50ms,
          .multiplier = 2.0,
          .max_delay = 2s,
          .max_attempts = 0,
          .deadline = 20s,
          .jitter = jitter,
          .seed = seed * 1000003 + static_cast<std::uint64_t>(client) + 1};
}

struct Named {
  std::string name;
  Row row;
};

void write_svg(const std::string& path, const std::vector<Named>& rows, const Setup& s) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return (void)std::fprintf(stderr, "fleet_simulation: cannot write %s\n", path.c_str());
  long top = 1;
  for (const auto& n : rows)
    for (long v : n.row.per_bucket) top = std::max(top, v * 10);
  const char* colours[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd"};
  constexpr int w = 900, h = 260, left = 70, pad = 30;
  std::fprintf(f,
               "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' "
               "font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n",
               w, 2 * h + 40);
  for (int panel = 0; panel < 2; ++panel) {
    const int y0 = 20 + panel * (h + 20), bottom = y0 + h - pad;
    std::fprintf(f,
                 "<text x='%d' y='%d' font-weight='bold'>%s: attempts per second (%d clients, down %g-%g s)</text>\n",
                 left, y0 + 12, panel ? "with RetryBudget{10, 0.1} per client" : "no budget", s.clients,
                 seconds(s.outage_begin), seconds(s.outage_end));
    std::fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", left, bottom, w - 10, bottom);
    std::fprintf(f, "<text x='5' y='%d'>%ld/s</text><text x='5' y='%d'>0</text>\n", y0 + 30, top, bottom);
    for (int t = 0; t <= 45; t += 5)
      std::fprintf(f, "<text x='%d' y='%d'>%d s</text>\n", left + t * (w - 10 - left) / 45 - 8, bottom + 14, t);
    for (std::size_t k = 0; k < 4; ++k) {
      const Named& n = rows[static_cast<std::size_t>(panel) * 4 + k];
      std::fprintf(f, "<polyline fill='none' stroke='%s' points='", colours[k]);
      for (std::size_t b = 0; b < buckets; ++b)
        std::fprintf(f, "%zu,%ld ", left + b * (w - 10 - left) / buckets,
                     bottom - n.row.per_bucket[b] * 10 * (h - pad - 30) / top);
      std::fprintf(f, "'/>\n<text x='%d' y='%d' fill='%s'>%s</text>\n", w - 260, y0 + 30 + 14 * static_cast<int>(k),
                   colours[k], n.name.c_str());
    }
  }
  std::fprintf(f, "</svg>\n");
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  Setup s;
  if (argc > 1) s.clients = std::max(1, std::atoi(argv[1]));
  if (argc > 2) s.admitted_per_tick = std::max(1, std::atoi(argv[2]));
  if (argc > 3) s.seed = std::strtoull(argv[3], nullptr, 10);
  std::printf("P5b fleet: %d clients, one call a second each; server down from %g s to %g s, then admits %d per "
              "%lld ms tick; each call ExponentialRetry 50 ms base, x2, 2 s cap, 20 s deadline; budget: gRPC's "
              "RetryBudget{max_tokens 10, token_ratio 0.1} per client; virtual time, seed %llu\n\n",
              s.clients, seconds(s.outage_begin), seconds(s.outage_end), s.admitted_per_tick,
              static_cast<long long>(s.tick / 1ms), static_cast<unsigned long long>(s.seed));
  std::printf("| jitter | budget | attempts during the outage | peak attempts/s after | calls failed (by the budget) "
              "| calls begun before recovery end after (s) |\n|---|---|---|---|---|---|\n");
  std::vector<Named> rows;
  const std::pair<const char*, cp::Jitter> modes[] = {{"none", cp::Jitter::none},
                                                      {"full", cp::Jitter::full},
                                                      {"equal", cp::Jitter::equal},
                                                      {"decorrelated", cp::Jitter::decorrelated}};
  for (bool budget : {false, true})
    for (auto [name, jitter] : modes) {
      std::fprintf(stderr, "fleet_simulation: %s jitter, %s budget\n", name, budget ? "with" : "no");
      const Row r =
          budget ? simulate<cp::Budgeted<cp::ExponentialRetry>>(
                       s,
                       [&](int c) {
                         return cp::Budgeted{cp::ExponentialRetry{call_options(jitter, s.seed, c)}, cp::RetryBudget{}};
                       })
                 : simulate<cp::ExponentialRetry>(
                       s, [&](int c) { return cp::ExponentialRetry{call_options(jitter, s.seed, c)}; });
      std::printf("| %s | %s | %ld | %ld | %ld of %ld (%ld) | %.2f |\n", name, budget ? "yes" : "no",
                  r.attempts_in_outage, r.peak_per_second_after, r.failed, r.calls, r.failed_by_budget,
                  r.backlog_seconds);
      rows.push_back({std::string(name) + " jitter", r});
    }
  if (argc > 4) write_svg(argv[4], rows, s);
  return 0;
}
