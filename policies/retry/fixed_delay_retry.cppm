// FixedDelayRetry: the same wait between rounds, up to max_attempts rounds or a deadline.
//
// Use when: one client talks to a server you run and a steady, predictable rhythm is fine.
// With many clients, prefer ExponentialRetry with jitter: equal waits make them all return at
// the same moment.
module;
#include <chrono>
#include <optional>
#include <stop_token>
export module connpolicy.retry:fixed_delay_retry;
import connpolicy.core;
import :schedule;

export namespace connpolicy {

struct FixedDelayOptions {
  std::chrono::milliseconds delay = std::chrono::milliseconds(100);
  int max_attempts = 3;                                 // rounds in all; 0 = no limit
  std::optional<std::chrono::milliseconds> deadline;    // for the whole connect()
  Timer* timer = nullptr;                               // nullptr: system_timer()
};

class FixedDelayRetry {
 public:
  class schedule_type {
   public:
    explicit schedule_type(const FixedDelayOptions& o, Timer& timer) noexcept
        : delay_(o.delay), budget_(timer, o.max_attempts, o.deadline) {}
    // Waits the delay, or exactly what the error says when it knows (a cooling rotation).
    expected<Timer::duration, GiveUp> next_delay(const NetError& error) noexcept {
      return budget_.admit(error.retry_after() ? Timer::duration(*error.retry_after()) : Timer::duration(delay_));
    }
    std::optional<Timer::duration> time_left() const noexcept { return budget_.time_left(); }

   private:
    std::chrono::milliseconds delay_;
    RetryBudget budget_;
  };

  FixedDelayRetry() noexcept = default;
  explicit FixedDelayRetry(FixedDelayOptions options) noexcept : options_(options) {}

  schedule_type schedule() const noexcept { return schedule_type(options_, timer()); }
  bool sleep(Timer::duration d, std::stop_token stop) const { return timer().sleep_for(d, stop); }
  const FixedDelayOptions& options() const noexcept { return options_; }

 private:
  Timer& timer() const noexcept { return options_.timer ? *options_.timer : system_timer(); }
  FixedDelayOptions options_;
};

}  // namespace connpolicy
