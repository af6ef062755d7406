// How time passes for the library: retry waits and port cooldowns ask a Timer, never the clock
// directly, so a test swaps in connpolicy.testing's ManualTimer and never sleeps.
module;
#include <chrono>
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

}  // namespace connpolicy
