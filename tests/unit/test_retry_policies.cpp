// Retry policies with a ManualTimer: exact delays, bounds, jitter ranges, cancellation.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using D = cp::Timer::duration;

namespace {
const cp::NetError refused = cp::NetError(cp::Step::connect, cp::make_system_error(ECONNREFUSED));

template <class Schedule>
std::vector<D> drain(Schedule& s, int max = 100) {
  std::vector<D> delays;
  for (int i = 0; i < max; ++i) {
    auto d = s.next_delay(refused);
    if (!d) break;
    delays.push_back(*d);
  }
  return delays;
}
}  // namespace

TEST_CASE("every retry policy satisfies RetryPolicy", "[retry][concepts]") {
  STATIC_REQUIRE(cp::RetryPolicy<cp::NoRetry>);
  STATIC_REQUIRE(cp::RetryPolicy<cp::FixedDelayRetry>);
  STATIC_REQUIRE(cp::RetryPolicy<cp::ExponentialRetry>);
}

TEST_CASE("NoRetry never retries", "[retry]") {
  cp::ManualTimer timer;
  auto s = cp::NoRetry{}.schedule(timer);
  auto d = s.next_delay(refused);
  REQUIRE_FALSE(d);
  CHECK(d.error() == cp::GiveUp::no_retry);
  CHECK_FALSE(s.time_left());
}

TEST_CASE("FixedDelayRetry: the same delay, max_attempts rounds in all", "[retry]") {
  cp::ManualTimer timer;
  cp::FixedDelayRetry retry{{.delay = 250ms, .max_attempts = 4}};
  auto s = retry.schedule(timer);
  CHECK(drain(s) == std::vector<D>{250ms, 250ms, 250ms});  // 4 rounds = 3 waits
  CHECK(s.next_delay(refused).error() == cp::GiveUp::max_attempts);
}

TEST_CASE("ExponentialRetry without jitter: initial * multiplier^n, capped", "[retry]") {
  cp::ManualTimer timer;
  cp::ExponentialRetry retry{
      {.initial = 50ms, .multiplier = 2.0, .max_delay = 300ms, .max_attempts = 7, .jitter = cp::Jitter::none}};
  auto s = retry.schedule(timer);
  CHECK(drain(s) == std::vector<D>{50ms, 100ms, 200ms, 300ms, 300ms, 300ms});
  cp::ExponentialRetry grpc_like{
      {.initial = 1s, .multiplier = 1.6, .max_delay = 120s, .max_attempts = 4, .jitter = cp::Jitter::none}};
  auto g = grpc_like.schedule(timer);
  CHECK(drain(g) == std::vector<D>{1000ms, 1600ms, 2560ms});
}

TEST_CASE("ExponentialRetry stops before a wait that would pass the deadline", "[retry]") {
  cp::ManualTimer timer;
  cp::ExponentialRetry retry{
      {.initial = 100ms, .max_delay = 10s, .max_attempts = 0, .deadline = 1s, .jitter = cp::Jitter::none}};
  auto s = retry.schedule(timer);
  std::vector<D> waited;
  for (int i = 0; i < 20; ++i) {
    auto d = s.next_delay(refused);
    if (!d) {
      CHECK(d.error() == cp::GiveUp::deadline);
      break;
    }
    waited.push_back(*d);
    REQUIRE(timer.sleep_for(*d, {}));  // as the driver waits: on the connector's clock
  }
  // 100 + 200 + 400 = 700 ms; the next (800 ms) would end at 1.5 s > 1 s, so it is not started.
  CHECK(waited == std::vector<D>{100ms, 200ms, 400ms});
  CHECK(timer.slept() == 700ms);
  CHECK(s.time_left() == D(300ms));
}

TEST_CASE("full jitter stays in [0, expo] and is spread over it", "[retry][jitter]") {
  cp::ManualTimer timer;
  cp::ExponentialRetry retry{{.initial = 100ms,
                              .multiplier = 2.0,
                              .max_delay = 800ms,
                              .max_attempts = 0,
                              .jitter = cp::Jitter::full,
                              .seed = 1234}};
  for (int n = 0; n < 5; ++n) {
    const D expo = std::min<D>(800ms, D(100ms) * (1 << n));
    D sum{}, low = expo, high{};
    for (int draw = 0; draw < 2000; ++draw) {
      auto s = retry.schedule(timer);
      for (int k = 0; k < n; ++k) s.backoff();
      const D d = s.backoff();
      REQUIRE(d >= D::zero());
      REQUIRE(d <= expo);
      sum += d;
      low = std::min(low, d);
      high = std::max(high, d);
    }
    const double mean = std::chrono::duration<double>(sum).count() / 2000;
    CHECK(mean == Approx(std::chrono::duration<double>(expo).count() / 2).epsilon(0.1));
    CHECK(low < expo / 10);
    CHECK(high > expo * 9 / 10);
  }
}

TEST_CASE("equal jitter stays in [expo/2, expo], decorrelated in [initial, min(cap, 3*previous)]", "[retry][jitter]") {
  cp::ManualTimer timer;
  cp::ExponentialRetry equal{
      {.initial = 100ms, .max_delay = 10s, .max_attempts = 0, .jitter = cp::Jitter::equal, .seed = 9}};
  for (int draw = 0; draw < 500; ++draw) {
    auto s = equal.schedule(timer);
    for (int n = 0; n < 6; ++n) {
      const D expo = D(100ms) * (1 << n);
      const D d = s.backoff();
      REQUIRE(d >= expo / 2);
      REQUIRE(d <= expo);
    }
  }
  cp::ExponentialRetry decorrelated{
      {.initial = 100ms, .max_delay = 2s, .max_attempts = 0, .jitter = cp::Jitter::decorrelated, .seed = 9}};
  for (int draw = 0; draw < 500; ++draw) {
    auto s = decorrelated.schedule(timer);
    D previous = 100ms;
    for (int n = 0; n < 8; ++n) {
      const D d = s.backoff();
      REQUIRE(d >= D(100ms));
      REQUIRE(d <= std::min<D>(2s, previous * 3));
      previous = d;
    }
  }
}

TEST_CASE("a seed replays exactly, schedules of one policy draw different streams", "[retry][jitter]") {
  cp::ManualTimer timer;
  const cp::ExponentialOptions o{.initial = 100ms, .max_attempts = 6, .seed = 77};
  cp::ExponentialRetry a{o}, b{o};
  auto sa = a.schedule(timer), sb = b.schedule(timer);
  CHECK(drain(sa) == drain(sb));
  auto first = a.schedule(timer), second = a.schedule(timer);
  CHECK(drain(first) != drain(second));
  cp::ExponentialRetry other{{.initial = 100ms, .max_attempts = 6, .seed = 78}};
  auto so = other.schedule(timer);
  auto sc = cp::ExponentialRetry{o}.schedule(timer);
  CHECK(drain(so) != drain(sc));
}

TEST_CASE("an error that knows when to retry is waited exactly", "[retry]") {
  cp::ManualTimer timer;
  const auto cooling = cp::NetError(cp::Step::bind, cp::LibraryError::all_ports_cooling).with_retry_after(1234ms);
  cp::ExponentialRetry exponential{{.initial = 10ms, .max_attempts = 3}};
  auto s = exponential.schedule(timer);
  CHECK(s.next_delay(cooling).value() == D(1234ms));
  cp::FixedDelayRetry fixed{{.delay = 10ms}};
  auto f = fixed.schedule(timer);
  CHECK(f.next_delay(cooling).value() == D(1234ms));
  // ... but never past the deadline.
  cp::ExponentialRetry bounded{{.deadline = 1s}};
  auto b = bounded.schedule(timer);
  CHECK(b.next_delay(cooling).error() == cp::GiveUp::deadline);
}

TEST_CASE("a stop request ends a retry wait on a ManualTimer at once", "[retry][cancel]") {
  cp::ManualTimer timer;
  std::stop_source stop;
  stop.request_stop();
  const auto before = timer.now();
  CHECK_FALSE(timer.sleep_for(1s, stop.get_token()));
  CHECK(timer.now() == before);  // a stopped sleep lets no time pass
}

TEST_CASE("the system timer's sleep wakes at once when stop is requested", "[retry][cancel][realtime]") {
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  const bool completed = cp::system_timer().sleep_for(30s, stop.get_token());
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(completed);
  CHECK(took < 10s);  // a 30 s sleep ended by the stop, long before its time
  CHECK(cp::system_timer().sleep_for(1ms, {}));
}
