// FixedDelayRetry: the same wait between rounds, up to max_attempts rounds or a deadline.
//
// Use when: one client talks to a server you run and a steady, predictable rhythm is fine.
// With many clients, prefer ExponentialRetry with jitter: equal waits make them all return at
// the same moment.
module;
#include <chrono>
#include <optional>
#include <utility>
export module connpolicy.retry:fixed_delay_retry;
import connpolicy.core;
import :schedule;

export namespace connpolicy {

// What each option must be (check() and make() refuse anything else with invalid_argument, and a
// Connector will not connect with it): delay >= 0; max_attempts >= 0; deadline, when set, >= 0
// (a huge one saturates: never reached); and some bound on a delay of 0 (max_attempts or a
// deadline), which would otherwise retry without a pause forever.
struct FixedDelayOptions {
  std::chrono::milliseconds delay = std::chrono::milliseconds(100);
  int max_attempts = 3;                               // rounds in all; 0 = no limit
  std::optional<std::chrono::milliseconds> deadline;  // for the whole connect()
};

class FixedDelayRetry {
 public:
  class schedule_type {
   public:
    explicit schedule_type(const FixedDelayOptions& o, Timer& timer) noexcept
        : delay_(o.delay), limit_(timer, o.max_attempts, o.deadline) {}
    // Waits the delay, or exactly what the error says when it knows (a cooling rotation).
    expected<Timer::duration, GiveUp> next_delay(const NetError& error) noexcept {
      return limit_.admit(saturating_duration(error.retry_after() ? *error.retry_after() : delay_));
    }
    std::optional<Timer::duration> time_left() const noexcept { return limit_.time_left(); }

   private:
    std::chrono::milliseconds delay_;
    AttemptLimit limit_;
  };

  FixedDelayRetry() noexcept : FixedDelayRetry(FixedDelayOptions{}) {}
  explicit FixedDelayRetry(FixedDelayOptions options) noexcept : options_(options) {}

  // The policy, or invalid_argument naming the first option that means nothing.
  static expected<FixedDelayRetry, NetError> make(FixedDelayOptions options) {
    FixedDelayRetry policy(options);
    if (auto ok = policy.check(); !ok) return unexpected(std::move(ok).error());
    return policy;
  }
  expected<void, NetError> check() const {
    if (auto e = check_duration("FixedDelayOptions::delay", options_.delay, true)) return unexpected(std::move(*e));
    if (auto e = check_count("FixedDelayOptions::max_attempts", options_.max_attempts, "no limit"))
      return unexpected(std::move(*e));
    if (options_.deadline)
      if (auto e = check_duration("FixedDelayOptions::deadline", *options_.deadline, true))
        return unexpected(std::move(*e));
    if (options_.delay == options_.delay.zero() && options_.max_attempts == 0 && !options_.deadline)
      return unexpected(invalid_option("FixedDelayOptions::delay",
                                       "is 0 ms with no max_attempts and no deadline: it would retry without a "
                                       "pause forever; give a delay or a bound"));
    return {};
  }

  schedule_type schedule(Timer& clock) const noexcept { return schedule_type(options_, clock); }
  const FixedDelayOptions& options() const noexcept { return options_; }

 private:
  FixedDelayOptions options_;
};

}  // namespace connpolicy
