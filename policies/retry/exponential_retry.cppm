// ExponentialRetry: waits that grow by a factor each round, capped, with jitter.
//
//   expo(n)       = min(max_delay, initial * multiplier^n)       n = 0, 1, 2, ... (round - 1)
//   none          = expo(n)
//   full          = U(0, expo(n))                                AWS "full jitter" (the default)
//   equal         = expo(n)/2 + U(0, expo(n)/2)
//   decorrelated  = min(max_delay, U(initial, 3 * previous))     previous starts at initial
//
// Use when: many clients may fail together (a server restart, a storm of TIME_WAITs): jitter
// spreads their returns (AWS measured full and decorrelated jitter needing far fewer calls than
// none). It stops after max_attempts rounds, or *before* a wait that would end past the
// deadline; a stop_token ends a wait at once. When the error knows how long until it can
// succeed (a FixedPortRotation whose ports are cooling says when the first frees), that exact
// wait replaces the backoff for the round.
module;
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
export module connpolicy.retry:exponential_retry;
import connpolicy.core;
import :schedule;

export namespace connpolicy {

enum class Jitter : std::uint8_t { none, full, equal, decorrelated };

// What each option must be (check() and make() refuse anything else with invalid_argument, and a
// Connector will not connect with it): initial > 0; multiplier finite and >= 1; max_delay >=
// initial; max_attempts >= 0; deadline, when set, >= 0 (0: give up before any wait; a huge one
// saturates: never reached); jitter one of the four.
struct ExponentialOptions {
  std::chrono::milliseconds initial = std::chrono::milliseconds(100);
  double multiplier = 2.0;
  std::chrono::milliseconds max_delay = std::chrono::seconds(10);
  int max_attempts = 5;                               // rounds in all; 0 = no limit (stop it with a stop_token)
  std::optional<std::chrono::milliseconds> deadline;  // for the whole connect()
  Jitter jitter = Jitter::full;
  std::uint64_t seed = 0;  // 0: from std::random_device
};

class ExponentialRetry {
 public:
  class schedule_type {
   public:
    schedule_type(const ExponentialOptions& options, Timer& timer, std::uint64_t seed) noexcept;
    expected<Timer::duration, GiveUp> next_delay(const NetError& error) noexcept;
    std::optional<Timer::duration> time_left() const noexcept { return limit_.time_left(); }
    // The wait for round n (0-based) before the limits are asked: exposed for tests and sims.
    Timer::duration backoff() noexcept;

   private:
    double uniform() noexcept;  // [0, 1), from a per-schedule SplitMix64 stream
    // What backoff() needs, copied (a schedule may outlive its policy) and made harmless: options
    // check() refuses become no NaN, nothing negative, nothing past the clock's range.
    Timer::duration initial_, cap_;
    double multiplier_;
    Jitter jitter_;
    AttemptLimit limit_;
    std::uint64_t rng_;
    int round_ = 0;
    Timer::duration previous_;
  };

  ExponentialRetry() : ExponentialRetry(ExponentialOptions{}) {}
  // Options that mean nothing are not refused here but by check(), which the Connector runs before
  // it connects; a schedule made from them anyway never has undefined behaviour.
  explicit ExponentialRetry(ExponentialOptions options);
  // The policy, or invalid_argument naming the first option that means nothing.
  static expected<ExponentialRetry, NetError> make(ExponentialOptions options);
  expected<void, NetError> check() const;

  // Each schedule draws its own stream (seed, then a per-policy counter), so threads sharing a
  // policy do not jitter in lockstep, and a fixed seed replays exactly.
  schedule_type schedule(Timer& clock) const noexcept;
  const ExponentialOptions& options() const noexcept { return *options_; }

 private:
  std::shared_ptr<const ExponentialOptions> options_;  // copies share
  std::uint64_t seed_;
  std::shared_ptr<std::atomic<std::uint64_t>> schedules_made_;
};

}  // namespace connpolicy
