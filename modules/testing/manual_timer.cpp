module;
#include <chrono>
#include <functional>
#include <mutex>
#include <numeric>
#include <stop_token>
#include <vector>
module connpolicy.testing;
import connpolicy.core;

namespace connpolicy {

ManualTimer::time_point ManualTimer::now() const noexcept {
  std::lock_guard lock(mutex_);
  return now_;
}

bool ManualTimer::sleep_for(duration d, std::stop_token stop) {
  std::function<void(duration)> hook;
  {
    std::lock_guard lock(mutex_);
    sleeps_.push_back(d);
    hook = hook_;
  }
  if (hook) hook(d);
  if (stop.stop_requested()) return false;
  std::lock_guard lock(mutex_);
  now_ = saturating_add(now_, d);  // a huge sleep must not wrap the virtual clock
  return true;
}

void ManualTimer::advance(duration d) {
  std::lock_guard lock(mutex_);
  now_ = saturating_add(now_, d);  // a huge sleep must not wrap the virtual clock
}

std::vector<ManualTimer::duration> ManualTimer::sleeps() const {
  std::lock_guard lock(mutex_);
  return sleeps_;
}

ManualTimer::duration ManualTimer::slept() const {
  std::lock_guard lock(mutex_);
  return std::accumulate(sleeps_.begin(), sleeps_.end(), duration{}, [](duration sum, duration d) {
    return d > duration::max() - sum ? duration::max() : sum + d;
  });
}

void ManualTimer::on_sleep(std::function<void(duration)> hook) {
  std::lock_guard lock(mutex_);
  hook_ = std::move(hook);
}

}  // namespace connpolicy
