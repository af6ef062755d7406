// NoRetry: one round, then give up with the error as it is.
//
// Use when: the caller has its own retry loop, or in tests that want to see the first failure.
// A FixedPortRotation still moves to another port within the round (that is a rebind, not a
// retry); what NoRetry never does is wait.
module;
#include <chrono>
#include <optional>
export module connpolicy.retry:no_retry;
import connpolicy.core;
import :schedule;

export namespace connpolicy {

struct NoRetry {
  struct schedule_type {
    expected<Timer::duration, GiveUp> next_delay(const NetError&) const noexcept {
      return unexpected(GiveUp::no_retry);
    }
    std::optional<Timer::duration> time_left() const noexcept { return std::nullopt; }
  };
  schedule_type schedule(Timer&) const noexcept { return {}; }
};

}  // namespace connpolicy
