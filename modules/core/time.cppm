// How time passes for the library: retry waits and port cooldowns ask a Timer, never the clock
// directly, so a test swaps in connpolicy.testing's ManualTimer and never sleeps.
module;
#include <chrono>
#include <cstdint>
#include <limits>
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
  constexpr R max = std::numeric_limits<R>::max(), min = std::numeric_limits<R>::min();
  // d in the clock's ticks, saturated (the conversion itself can overflow: ms::max() in ns).
  constexpr long double ticks_per_unit =
      static_cast<long double>(Period::num) * D::period::den / (static_cast<long double>(Period::den) * D::period::num);
  const long double wanted = static_cast<long double>(d.count()) * ticks_per_unit;
  const R ticks = wanted >= static_cast<long double>(max)   ? max
                  : wanted <= static_cast<long double>(min) ? min
                                                            : std::chrono::duration_cast<D>(d).count();
  const R now = t.time_since_epoch().count();
  if (ticks > 0 && now > max - ticks) return Timer::time_point::max();
  if (ticks < 0 && now < min - ticks) return Timer::time_point::min();
  return t + D(ticks);
}

// `given`, or when it is 0 a seed from std::random_device: what every `seed` option means.
std::uint64_t seed_or_random(std::uint64_t given);

}  // namespace connpolicy
