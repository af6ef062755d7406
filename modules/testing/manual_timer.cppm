// ManualTimer: time that passes only when the code under test sleeps. A sleep returns at once,
// moves now() forward by exactly the time asked, and is recorded, so a test can check every
// retry delay exactly and a 60 s cooldown costs nothing.
//
//     connpolicy::ManualTimer timer;
//     connpolicy::ExponentialRetry retry{{.initial = 50ms, .timer = &timer}};
//     ... connect ...
//     REQUIRE(timer.sleeps() == std::vector<connpolicy::Timer::duration>{50ms, 100ms});
module;
#include <chrono>
#include <functional>
#include <mutex>
#include <stop_token>
#include <vector>
export module connpolicy.testing:manual_timer;
import connpolicy.core;

export namespace connpolicy {

class ManualTimer final : public Timer {
 public:
  // Starts at an arbitrary fixed point (not zero, so "time 0" is never special by accident).
  ManualTimer() = default;
  ManualTimer(const ManualTimer&) = delete;
  ManualTimer& operator=(const ManualTimer&) = delete;

  time_point now() const noexcept override;
  // Records `d`, runs the on_sleep hook (which may request a stop), then advances time; returns
  // false without advancing when stop was requested before or by the hook.
  bool sleep_for(duration d, std::stop_token stop) override;

  void advance(duration d);
  std::vector<duration> sleeps() const;
  duration slept() const;  // the sum of all sleeps
  // Called at the start of each sleep, e.g. to request a stop "while sleeping".
  void on_sleep(std::function<void(duration)> hook);

 private:
  mutable std::mutex mutex_;
  time_point now_ = time_point{} + std::chrono::hours(1000);
  std::vector<duration> sleeps_;
  std::function<void(duration)> hook_;
};

}  // namespace connpolicy
