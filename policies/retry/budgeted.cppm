// Budgeted<Retry>: any retry policy, asking a shared RetryBudget before each retry.
//
//   Connector<FixedPortRotation, Budgeted<ExponentialRetry>> client{
//       rotation, Budgeted<ExponentialRetry>{ExponentialRetry{...}, budget}};
//
// The wrapped policy decides when (its waits, attempts, deadline); the budget decides whether
// anyone may retry at all right now. A retry the budget refuses ends the connect with the round's
// error, gave_up() == GiveUp::retry_budget, and the observer's event says so too. A connect that
// succeeds gives tokens back. Use when: see RetryBudget.
module;
#include <chrono>
#include <optional>
#include <utility>
export module connpolicy.retry:budgeted;
import connpolicy.core;
import :schedule;
import :retry_budget;

export namespace connpolicy {

// Whether a failure put load on the server, and so costs the budget a token: it got as far as a
// connect (a local port the 4-tuple already holds does not count).
inline bool reached_server(const NetError& error) noexcept {
  if (error.step() != Step::connect && error.step() != Step::wait) return false;
  const Errc c = error.condition();
  return c != Errc::local_port_busy && c != Errc::local_ports_exhausted && c != Errc::cancelled;
}

template <RetryPolicy Retry>
class Budgeted {
 public:
  class schedule_type {
   public:
    schedule_type(typename Retry::schedule_type inner, RetryBudget budget) noexcept
        : inner_(std::move(inner)), budget_(std::move(budget)) {}
    // Every failure that reached the server costs a token, the last round's too (as in gRPC), so
    // connects that give up on their own still tell the budget how the server is doing.
    expected<Timer::duration, GiveUp> next_delay(const NetError& error) {
      auto delay = inner_.next_delay(error);
      const bool allowed = !reached_server(error) || budget_.record_failure();
      if (delay && !allowed) return unexpected(GiveUp::retry_budget);
      return delay;
    }
    std::optional<Timer::duration> time_left() const noexcept { return inner_.time_left(); }
    void succeeded() noexcept {
      budget_.record_success();
      report_success(inner_);
    }

   private:
    typename Retry::schedule_type inner_;
    RetryBudget budget_;  // a handle: the schedule may outlive the policy
  };

  Budgeted(Retry retry, RetryBudget budget) : retry_(std::move(retry)), budget_(std::move(budget)) {}

  schedule_type schedule(Timer& clock) const { return schedule_type(retry_.schedule(clock), budget_); }
  expected<void, NetError> check() const {
    if constexpr (requires { retry_.check(); })
      if (auto ok = retry_.check(); !ok) return ok;
    return budget_.check();
  }
  const Retry& retry() const noexcept { return retry_; }
  const RetryBudget& budget() const noexcept { return budget_; }

 private:
  Retry retry_;
  RetryBudget budget_;
};

}  // namespace connpolicy
