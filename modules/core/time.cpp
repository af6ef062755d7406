module;
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <stop_token>
#include <thread>
module connpolicy.core;

namespace connpolicy {
namespace {
class SystemTimer final : public Timer {
 public:
  time_point now() const noexcept override { return clock::now(); }
  bool sleep_for(duration d, std::stop_token stop) override {
    if (stop.stop_requested()) return false;
    const auto until = saturating_add(clock::now(), d);  // a huge d must not overflow now() + d
    if (!stop.stop_possible()) {
      std::this_thread::sleep_until(until);
      return true;
    }
    // condition_variable_any's stop_token overload wakes as soon as stop is requested.
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    const bool stopped = wake.wait_until(lock, stop, until, [] { return false; }) || stop.stop_requested();
    return !stopped;
  }
};
}  // namespace

std::uint64_t seed_or_random(std::uint64_t given) {
  if (given != 0) return given;
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

Timer& system_timer() noexcept {
  static SystemTimer timer;
  return timer;
}
}  // namespace connpolicy
