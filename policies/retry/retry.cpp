module;
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string_view>
module connpolicy.retry;
import connpolicy.core;

namespace connpolicy {
namespace {
std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

std::string_view to_string(GiveUp reason) noexcept {
  switch (reason) {
    case GiveUp::no_retry: return "the retry policy does not retry";
    case GiveUp::max_attempts: return "the retry policy's max_attempts was reached";
    case GiveUp::deadline: return "the next wait would end after the deadline";
  }
  return "gave up";
}

ExponentialRetry::ExponentialRetry(ExponentialOptions options)
    : SleepsOnTimer(options.timer), options_(std::make_shared<const ExponentialOptions>(options)),
      seed_(seed_or_random(options.seed)), schedules_made_(std::make_shared<std::atomic<std::uint64_t>>(0)) {}

ExponentialRetry::schedule_type ExponentialRetry::schedule() const noexcept {
  std::uint64_t stream = seed_ + 0x632be59bd9b4e019ull * schedules_made_->fetch_add(1, std::memory_order_relaxed);
  return schedule_type(*options_, timer(), splitmix64(stream));
}

ExponentialRetry::schedule_type::schedule_type(const ExponentialOptions& options, Timer& timer,
                                               std::uint64_t seed) noexcept
    : options_(&options), limit_(timer, options.max_attempts, options.deadline), rng_(seed),
      previous_(options.initial) {}

double ExponentialRetry::schedule_type::uniform() noexcept {
  return static_cast<double>(splitmix64(rng_) >> 11) * 0x1.0p-53;
}

Timer::duration ExponentialRetry::schedule_type::backoff() noexcept {
  using D = std::chrono::duration<double, Timer::duration::period>;
  const D initial = options_->initial, cap = options_->max_delay;
  // min(cap, initial * multiplier^n), computed in floating point so it cannot overflow.
  const D expo = std::min(cap, D(initial.count() * std::pow(std::max(options_->multiplier, 1.0), round_)));
  ++round_;
  D d{};
  switch (options_->jitter) {
    case Jitter::none: d = expo; break;
    case Jitter::full: d = expo * uniform(); break;
    case Jitter::equal: d = expo / 2 + (expo / 2) * uniform(); break;
    case Jitter::decorrelated: {
      const D low = initial, high = std::max(initial, D(previous_) * 3);
      d = std::min(cap, low + (high - low) * uniform());
      break;
    }
  }
  const auto result = std::chrono::round<Timer::duration>(d);
  previous_ = result;
  return result;
}

expected<Timer::duration, GiveUp> ExponentialRetry::schedule_type::next_delay(const NetError& error) noexcept {
  if (error.retry_after()) return limit_.admit(*error.retry_after());
  return limit_.admit(backoff());
}

}  // namespace connpolicy
