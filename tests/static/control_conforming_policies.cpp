// Must compile: the control for the harness. The same shapes as the must-not-compile cases,
// done right, build with the same command; so those fail for their own reason.
// expected-diagnostic: none (it must compile)
#include <chrono>
#include <optional>
#include <stop_token>
import connpolicy;
namespace cp = connpolicy;
struct MyBind {
  static constexpr bool can_rebind = false;
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint&) const { return cp::BindPlan{}; }
  void failed(const cp::BindPlan&, const cp::NetError&) const {}
};
struct MyRetry {
  struct schedule_type {
    cp::expected<cp::Timer::duration, cp::GiveUp> next_delay(const cp::NetError&) {
      return cp::unexpected(cp::GiveUp::no_retry);
    }
    std::optional<cp::Timer::duration> time_left() const { return std::nullopt; }
  };
  schedule_type schedule(cp::Timer&) const { return {}; }
};
struct MyError {
  cp::Action classify(const cp::Failure&) const { return cp::Action::give_up; }
};
int main() {
  cp::Connector<MyBind, MyRetry, MyError> c;
  connpolicy::FixedPortRotation rotation{40000, 40009};
  constexpr connpolicy::FixedPort port{40000};
  const bool refused_at_once = !c.connect(cp::Endpoint::loopback_v4(1));  // MyError gives up
  return (rotation.range().size() == 10 && port.port() == 40000 && refused_at_once) ? 0 : 1;
}
