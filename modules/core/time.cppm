// How time passes for the library: retry waits and port cooldowns ask a Timer, never the clock
// directly, so a test swaps in connpolicy.testing's ManualTimer and never sleeps.
module;
#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>
#include <stop_token>
export module connpolicy.core:time;

export namespace connpolicy {

class Timer {
 public:
  using clock = std::chrono::steady_clock;  // never the wall clock: it jumps
  using time_point = clock::time_point;
  using duration = clock::duration;

  virtual time_point now() const noexcept = 0;
  // Waits `d`, or less when `stop` is requested; returns false when stopped.
  virtual bool sleep_for(duration d, std::stop_token stop) = 0;

 protected:
  Timer() = default;
  Timer(const Timer&) = default;
  Timer& operator=(const Timer&) = default;
  ~Timer() = default;
};

// steady_clock, and a sleep that a stop request ends at once.
Timer& system_timer() noexcept;

// `timer`, or system_timer() when it is null (the options structs' "nullptr: the system's").
inline Timer& timer_or_system(Timer* timer) noexcept { return timer ? *timer : system_timer(); }

// t + d, clamped to the clock's range: a deadline of milliseconds::max() means "never" instead of
// overflowing (undefined behaviour) into the past.
template <class Rep, class Period>
constexpr Timer::time_point saturating_add(Timer::time_point t, std::chrono::duration<Rep, Period> d) noexcept {
  using D = Timer::duration;
  using R = D::rep;
  using TicksPerUnit = std::ratio_divide<Period, D::period>;
  if constexpr (std::is_integral_v<Rep> && std::is_signed_v<Rep> && TicksPerUnit::den == 1) {
    // Whole ticks per unit (ms, s, ns): integer arithmetic that says when it overflows; this is
    // on every connect's path.
    R ticks = 0, sum = 0;
    if (__builtin_mul_overflow(static_cast<R>(d.count()), static_cast<R>(TicksPerUnit::num), &ticks) ||
        __builtin_add_overflow(t.time_since_epoch().count(), ticks, &sum))
      return d.count() > 0 ? Timer::time_point::max() : Timer::time_point::min();
    return Timer::time_point(D(sum));
  } else {
    constexpr long double max = static_cast<long double>(std::numeric_limits<R>::max());
    constexpr long double min = static_cast<long double>(std::numeric_limits<R>::min());
    // The sum in the clock's ticks, in floating point, decides whether it fits; when it does, the
    // exact integer sum is returned (the conversion alone can overflow too).
    constexpr long double ticks_per_unit =
        static_cast<long double>(TicksPerUnit::num) / static_cast<long double>(TicksPerUnit::den);
    const long double sum =
        static_cast<long double>(t.time_since_epoch().count()) + static_cast<long double>(d.count()) * ticks_per_unit;
    if (sum >= max) return Timer::time_point::max();
    if (sum <= min) return Timer::time_point::min();
    return t + std::chrono::duration_cast<D>(d);
  }
}

// d in the clock's ticks, clamped to what they can hold (milliseconds::max() is ~292 million
// years; in nanoseconds it would overflow).
template <class Rep, class Period>
constexpr Timer::duration saturating_duration(std::chrono::duration<Rep, Period> d) noexcept {
  const Timer::time_point zero{};
  const Timer::time_point end = saturating_add(zero, d);
  return end - zero;
}

// `given`, or when it is 0 a seed from std::random_device: what every `seed` option means.
std::uint64_t seed_or_random(std::uint64_t given);

}  // namespace connpolicy
