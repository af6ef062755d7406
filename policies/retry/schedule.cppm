// The retry policy contract. A policy is configuration (shared, read-only); each connect() gets
// its own schedule, which counts attempts and knows the deadline. A policy decides and never
// waits: the driver waits the delay its own way (the blocking Connector on the connector's clock,
// the Asio driver on a steady_timer).
//   policy.schedule(clock)     a fresh schedule, started now on `clock`: the connector's one
//                              clock (ConnectorOptions::timer), which the schedule reads for its
//                              deadline; the driver passes it
//   schedule.next_delay(error) how long to wait before the next round, or why to stop
//   schedule.time_left()       until the deadline, if there is one (bounds each connect wait)
//   schedule.succeeded()       optional: told when the connect succeeded (a RetryBudget refills)
module;
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>
export module connpolicy.retry:schedule;
import connpolicy.core;

export namespace connpolicy {

template <class R>
concept RetryPolicy = std::copy_constructible<R> && requires(const R& policy, typename R::schedule_type& schedule,
                                                             const NetError& error, Timer& clock) {
  { policy.schedule(clock) } -> std::same_as<typename R::schedule_type>;
  { schedule.next_delay(error) } -> std::same_as<expected<Timer::duration, GiveUp>>;
  { schedule.time_left() } -> std::same_as<std::optional<Timer::duration>>;
};

// Tells a schedule that wants to know (it has succeeded()) that its connect succeeded. The hook
// is optional, so one of another shape, or spelled nearly so, would silently never be called:
// either is a compile error that names it.
template <class Schedule>
void report_success(Schedule& schedule) noexcept {
  constexpr bool has_hook = requires { schedule.succeeded(); };
  static_assert(
      has_hook || !requires { &Schedule::succeeded; },
      "connpolicy: the optional hook 'succeeded' of this retry schedule has the wrong shape and would "
      "never be called: declare it `void succeeded()` (no argument)");
  static_assert(has_hook || !(
                                requires { &Schedule::success; } || requires { &Schedule::succeed; } ||
                                requires { &Schedule::succeded; } || requires { &Schedule::on_success; } ||
                                requires { &Schedule::report_success; }),
                "connpolicy: this retry schedule has a member named nearly like the optional hook 'succeeded', "
                "which the connector would never call: spell it `void succeeded()`");
  if constexpr (has_hook) schedule.succeeded();
}

// One connect()'s limits, which every counting policy shares: rounds made against max_attempts,
// the deadline, and the rule that a wait which would end past the deadline is not started.
// Reusable by your own policies. (Not a retry budget in the field's sense, a token bucket shared
// by many connects: this counts one connect's rounds.)
class AttemptLimit {
 public:
  // max_attempts: rounds in all, the first included (0 = no limit). deadline: from now; a huge
  // one saturates at the clock's end (never reached) instead of overflowing.
  AttemptLimit(Timer& timer, int max_attempts, std::optional<std::chrono::milliseconds> deadline) noexcept
      : timer_(&timer), max_attempts_(max_attempts),
        deadline_(deadline ? std::optional(saturating_add(timer.now(), *deadline)) : std::nullopt) {}

  // Called once per failed round with the wait the policy would like next.
  expected<Timer::duration, GiveUp> admit(Timer::duration delay) noexcept {
    ++rounds_;
    if (max_attempts_ > 0 && rounds_ >= max_attempts_) return unexpected(GiveUp::max_attempts);
    if (deadline_ && saturating_add(timer_->now(), delay) > *deadline_) return unexpected(GiveUp::deadline);
    return delay;
  }
  std::optional<Timer::duration> time_left() const noexcept {
    if (!deadline_) return std::nullopt;
    const auto left = *deadline_ - timer_->now();
    return left > Timer::duration::zero() ? left : Timer::duration::zero();
  }
  int rounds() const noexcept { return rounds_; }

 private:
  Timer* timer_;
  int max_attempts_;
  std::optional<Timer::time_point> deadline_;
  int rounds_ = 0;
};

}  // namespace connpolicy
