// RetryBudget: a token bucket shared by every connect that holds it, which caps retries when many
// fail together (gRPC's retryThrottling, the same arithmetic).
//
//   starts full, at max_tokens
//   a failed round that reached for the server   tokens = max(0, tokens - 1)
//   a connect that succeeded                     tokens = min(max_tokens, tokens + token_ratio)
//   a retry may follow a failure only while      tokens > max_tokens / 2   (after taking its token)
//
// Use when: many connects (threads, coroutines, connectors) talk to one server, and a server that
// is down or overloaded must not be met with every client's whole retry schedule at once. Jitter
// spreads retries out; a budget caps them: once half the bucket is spent, failing connects end at
// their first failure (NetError::gave_up() == GiveUp::retry_budget) until successes refill it.
// Hold it in Budgeted<YourRetry>. Copies share one bucket (held by handle); it is lock-free and
// thread-safe. Failures that never reached the server (a busy or cooling local port, no
// descriptor, a bad option, a name lookup) cost nothing: they put no load on it.
module;
#include <atomic>
#include <cstdint>
#include <memory>
export module connpolicy.retry:retry_budget;
import connpolicy.core;

export namespace connpolicy {

// What each option must be (check() and make() refuse anything else with invalid_argument):
// max_tokens 1 to 1 000 000; token_ratio finite, at least 0.001 (kept to thousandths, as gRPC
// does) and at most max_tokens.
struct RetryBudgetOptions {
  int max_tokens = 10;       // gRPC maxTokens: the bucket's size, and where it starts
  double token_ratio = 0.1;  // gRPC tokenRatio: what each success gives back
};

class RetryBudget {
 public:
  RetryBudget() : RetryBudget(RetryBudgetOptions{}) {}
  explicit RetryBudget(RetryBudgetOptions options);
  // The budget, or invalid_argument naming the first option that means nothing.
  static expected<RetryBudget, NetError> make(RetryBudgetOptions options);
  expected<void, NetError> check() const;

  // A failed round: one token less. True when a retry may follow it.
  bool record_failure() noexcept;
  void record_success() noexcept;
  // For metrics and tests (each a moment's reading; other threads move them).
  double tokens() const noexcept;
  bool allows_retry() const noexcept;      // would a retry after one more failure be allowed?
  std::uint64_t refused() const noexcept;  // retries refused so far
  const RetryBudgetOptions& options() const noexcept { return state_->options; }

 private:
  struct State {
    explicit State(RetryBudgetOptions o) noexcept;
    RetryBudgetOptions options;
    std::int64_t max_milli, ratio_milli;  // in thousandths of a token, as gRPC counts
    std::atomic<std::int64_t> milli;
    std::atomic<std::uint64_t> refused{0};
  };
  static_assert(std::atomic<std::int64_t>::is_always_lock_free);
  std::shared_ptr<State> state_;
};

}  // namespace connpolicy
