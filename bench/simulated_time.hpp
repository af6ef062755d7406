// The clock of the virtual-time simulations (P5, P5b), seen by the real retry schedules through
// the Timer interface. Include after `import connpolicy;`.
#pragma once
#include <stop_token>

namespace bench_support {

class SimulatedTime final : public connpolicy::Timer {
 public:
  time_point now() const noexcept override { return now_; }
  bool sleep_for(duration, std::stop_token) override { return true; }  // the simulation moves time
  void set(time_point t) { now_ = t; }

 private:
  time_point now_{};
};

}  // namespace bench_support
