module;
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
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

ExponentialRetry::ExponentialRetry(ExponentialOptions options)
    : options_(std::make_shared<const ExponentialOptions>(options)), seed_(seed_or_random(options.seed)),
      schedules_made_(std::make_shared<std::atomic<std::uint64_t>>(0)) {}

expected<void, NetError> ExponentialRetry::check() const {
  const ExponentialOptions& o = *options_;
  if (auto e = check_duration("ExponentialOptions::initial", o.initial, false)) return unexpected(std::move(*e));
  if (!std::isfinite(o.multiplier) || o.multiplier < 1.0)
    return unexpected(
        invalid_option("ExponentialOptions::multiplier",
                       "is " + std::to_string(o.multiplier) + ": it must be a finite factor of 1 or more"));
  if (o.max_delay < o.initial)
    return unexpected(invalid_option("ExponentialOptions::max_delay", "is " + std::to_string(o.max_delay.count()) +
                                                                          " ms, less than initial (" +
                                                                          std::to_string(o.initial.count()) + " ms)"));
  if (auto e = check_count("ExponentialOptions::max_attempts", o.max_attempts, "no limit"))
    return unexpected(std::move(*e));
  if (o.deadline)
    if (auto e = check_duration("ExponentialOptions::deadline", *o.deadline, true)) return unexpected(std::move(*e));
  if (o.jitter != Jitter::none && o.jitter != Jitter::full && o.jitter != Jitter::equal &&
      o.jitter != Jitter::decorrelated)
    return unexpected(invalid_option("ExponentialOptions::jitter",
                                     "is " + std::to_string(static_cast<int>(o.jitter)) + ", not a Jitter"));
  return {};
}

expected<ExponentialRetry, NetError> ExponentialRetry::make(ExponentialOptions options) {
  ExponentialRetry policy(options);
  if (auto ok = policy.check(); !ok) return unexpected(std::move(ok).error());
  return policy;
}

ExponentialRetry::schedule_type ExponentialRetry::schedule(Timer& clock) const noexcept {
  std::uint64_t stream = seed_ + 0x632be59bd9b4e019ull * schedules_made_->fetch_add(1, std::memory_order_relaxed);
  return schedule_type(*options_, clock, splitmix64(stream));  // copies what it needs
}

ExponentialRetry::schedule_type::schedule_type(const ExponentialOptions& options, Timer& timer,
                                               std::uint64_t seed) noexcept
    : initial_(saturating_duration(std::max(options.initial, std::chrono::milliseconds::zero()))),
      cap_(std::max(saturating_duration(options.max_delay), initial_)),
      multiplier_(std::isfinite(options.multiplier) && options.multiplier >= 1.0 ? options.multiplier : 1.0),
      jitter_(options.jitter), limit_(timer, options.max_attempts, options.deadline), rng_(seed), previous_(initial_) {}

double ExponentialRetry::schedule_type::uniform() noexcept {
  return static_cast<double>(splitmix64(rng_) >> 11) * 0x1.0p-53;
}

Timer::duration ExponentialRetry::schedule_type::backoff() noexcept {
  using D = std::chrono::duration<double, Timer::duration::period>;
  const D initial = initial_, cap = cap_;
  // min(cap, initial * multiplier^n), computed in floating point so it cannot overflow.
  const D expo = std::min(cap, D(initial.count() * std::pow(multiplier_, round_)));
  ++round_;
  D d{};
  switch (jitter_) {
    case Jitter::none: d = expo; break;
    case Jitter::full: d = expo * uniform(); break;
    case Jitter::equal: d = expo / 2 + (expo / 2) * uniform(); break;
    case Jitter::decorrelated: {
      const D low = initial, high = std::max(initial, D(previous_) * 3);
      d = std::min(cap, low + (high - low) * uniform());
      break;
    }
    default: d = expo; break;  // not a Jitter: check() refuses it
  }
  // A wait past what the clock can count (a huge initial or max_delay) is the longest it can.
  const auto result = d >= D(Timer::duration::max()) ? Timer::duration::max() : std::chrono::round<Timer::duration>(d);
  previous_ = result;
  return result;
}

expected<Timer::duration, GiveUp> ExponentialRetry::schedule_type::next_delay(const NetError& error) noexcept {
  if (error.retry_after()) return limit_.admit(saturating_duration(*error.retry_after()));
  return limit_.admit(backoff());
}

}  // namespace connpolicy
