// Compile-only: for each policy concept, a type that meets it, and for each of its requirements a
// type that misses exactly that one, which must not satisfy it. A concept that stops checking a
// requirement fails the build here.
#include <chrono>
#include <optional>
#include <stop_token>
import connpolicy;

namespace cp = connpolicy;
namespace {

// --- BindPolicy: copyable, static can_rebind, plan(remote) -> expected<BindPlan, NetError>,
//     failed(plan, error) -> void.
struct Bind {
  static constexpr bool can_rebind = false;
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint&) { return cp::BindPlan{}; }
  void failed(const cp::BindPlan&, const cp::NetError&) {}
};
struct BindWithoutCanRebind {
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint&) { return cp::BindPlan{}; }
  void failed(const cp::BindPlan&, const cp::NetError&) {}
};
struct BindPlanReturnsOptional : Bind {
  std::optional<cp::Endpoint> plan(const cp::Endpoint&) { return std::nullopt; }
};
struct BindWithoutPlan {
  static constexpr bool can_rebind = false;
  void failed(const cp::BindPlan&, const cp::NetError&) {}
};
struct BindWithoutFailed {
  static constexpr bool can_rebind = false;
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint&) { return cp::BindPlan{}; }
};
struct BindFailedReturnsBool : Bind {
  bool failed(const cp::BindPlan&, const cp::NetError&) { return true; }
};
struct BindNotCopyable : Bind {
  BindNotCopyable() = default;
  BindNotCopyable(const BindNotCopyable&) = delete;
};
static_assert(cp::BindPolicy<Bind>);
static_assert(!cp::BindPolicy<BindWithoutCanRebind>);
static_assert(!cp::BindPolicy<BindPlanReturnsOptional>);
static_assert(!cp::BindPolicy<BindWithoutPlan>);
static_assert(!cp::BindPolicy<BindWithoutFailed>);
static_assert(!cp::BindPolicy<BindFailedReturnsBool>);
static_assert(!cp::BindPolicy<BindNotCopyable>);
static_assert(cp::BindPolicy<cp::NoBind> && cp::BindPolicy<cp::EphemeralBind> && cp::BindPolicy<cp::FixedPort> &&
              cp::BindPolicy<cp::FixedPortRotation> && cp::BindPolicy<cp::SourceAddressPool> &&
              cp::BindPolicy<cp::KernelPortRange>);

// --- RetryPolicy: copyable, schedule_type, schedule() -> schedule_type,
//     schedule.next_delay(error) -> expected<duration, GiveUp>, schedule.time_left() ->
//     optional<duration>. No sleep(): a policy decides, its driver waits.
struct Schedule {
  cp::expected<cp::Timer::duration, cp::GiveUp> next_delay(const cp::NetError&) { return cp::Timer::duration{}; }
  std::optional<cp::Timer::duration> time_left() const { return std::nullopt; }
};
struct Retry {
  using schedule_type = Schedule;
  schedule_type schedule(cp::Timer&) const { return {}; }
};
struct RetryWithoutScheduleType {
  Schedule schedule(cp::Timer&) const { return {}; }
};
struct RetryScheduleReturnsOther : Retry {
  int schedule(cp::Timer&) const { return 0; }
};
struct RetryScheduleWithoutClock {  // the one-clock rule: a schedule is made on the connector's clock
  using schedule_type = Schedule;
  schedule_type schedule() const { return {}; }
};
struct ScheduleNextDelayReturnsDuration : Schedule {
  cp::Timer::duration next_delay(const cp::NetError&) { return {}; }
};
struct RetryNextDelayWrong : Retry {
  using schedule_type = ScheduleNextDelayReturnsDuration;
  schedule_type schedule(cp::Timer&) const { return {}; }
};
struct ScheduleWithoutTimeLeft {
  cp::expected<cp::Timer::duration, cp::GiveUp> next_delay(const cp::NetError&) { return cp::Timer::duration{}; }
};
struct RetryWithoutTimeLeft : Retry {
  using schedule_type = ScheduleWithoutTimeLeft;
  schedule_type schedule(cp::Timer&) const { return {}; }
};
struct RetryNotCopyable : Retry {
  RetryNotCopyable() = default;
  RetryNotCopyable(const RetryNotCopyable&) = delete;
};
static_assert(cp::RetryPolicy<Retry>);
static_assert(!cp::RetryPolicy<RetryWithoutScheduleType>);
static_assert(!cp::RetryPolicy<RetryScheduleReturnsOther>);
static_assert(!cp::RetryPolicy<RetryNextDelayWrong>);
static_assert(!cp::RetryPolicy<RetryWithoutTimeLeft>);
static_assert(!cp::RetryPolicy<RetryScheduleWithoutClock>);
static_assert(!cp::RetryPolicy<RetryNotCopyable>);
static_assert(cp::RetryPolicy<cp::NoRetry> && cp::RetryPolicy<cp::FixedDelayRetry> &&
              cp::RetryPolicy<cp::ExponentialRetry>);

// --- ErrorPolicy: copyable, classify(failure) const -> Action.
struct Error {
  cp::Action classify(const cp::Failure&) const { return cp::Action::give_up; }
};
struct ErrorWithoutClassify {};
struct ErrorClassifyReturnsBool {
  bool classify(const cp::Failure&) const { return false; }
};
struct ErrorClassifyNotConst {
  cp::Action classify(const cp::Failure&) { return cp::Action::give_up; }
};
struct ErrorNotCopyable : Error {
  ErrorNotCopyable() = default;
  ErrorNotCopyable(const ErrorNotCopyable&) = delete;
};
static_assert(cp::ErrorPolicy<Error>);
static_assert(!cp::ErrorPolicy<ErrorWithoutClassify>);
static_assert(!cp::ErrorPolicy<ErrorClassifyReturnsBool>);
static_assert(!cp::ErrorPolicy<ErrorClassifyNotConst>);
static_assert(!cp::ErrorPolicy<ErrorNotCopyable>);
static_assert(cp::ErrorPolicy<cp::DefaultErrorPolicy> && cp::ErrorPolicy<cp::FailFast>);

// --- ConnectObserver: copyable, callable with const AttemptEvent&.
struct Observer {
  void operator()(const cp::AttemptEvent&) const {}
};
struct ObserverOfSomethingElse {
  void operator()(int) const {}
};
struct ObserverNotCopyable : Observer {
  ObserverNotCopyable() = default;
  ObserverNotCopyable(const ObserverNotCopyable&) = delete;
};
static_assert(cp::ConnectObserver<Observer> && cp::ConnectObserver<cp::NoObserver>);
static_assert(!cp::ConnectObserver<ObserverOfSomethingElse>);
static_assert(!cp::ConnectObserver<ObserverNotCopyable>);

}  // namespace
