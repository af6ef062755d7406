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
  int max_attempts = 3;                               // rounds in all; 0 = no limit
  std::optional<std::chrono::milliseconds> deadline;  // for the whole connect()
  Timer* timer = nullptr;                             // nullptr: system_timer()
};

class FixedDelayRetry : public SleepsOnTimer {
 public:
  class schedule_type {
   public:
    explicit schedule_type(const FixedDelayOptions& o, Timer& timer) noexcept
        : delay_(o.delay), limit_(timer, o.max_attempts, o.deadline) {}
    // Waits the delay, or exactly what the error says when it knows (a cooling rotation).
    expected<Timer::duration, GiveUp> next_delay(const NetError& error) noexcept {
      return limit_.admit(error.retry_after() ? Timer::duration(*error.retry_after()) : Timer::duration(delay_));
    }
    std::optional<Timer::duration> time_left() const noexcept { return limit_.time_left(); }

   private:
    std::chrono::milliseconds delay_;
    AttemptLimit limit_;
  };

  FixedDelayRetry() noexcept : FixedDelayRetry(FixedDelayOptions{}) {}
  explicit FixedDelayRetry(FixedDelayOptions options) noexcept : SleepsOnTimer(options.timer), options_(options) {}

  schedule_type schedule() const noexcept { return schedule_type(options_, timer()); }
  const FixedDelayOptions& options() const noexcept { return options_; }

 private:
  FixedDelayOptions options_;
};

}  // namespace connpolicy
