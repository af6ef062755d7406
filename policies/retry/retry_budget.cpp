module;
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
module connpolicy.retry;
import connpolicy.core;

namespace connpolicy {
namespace {
constexpr int max_max_tokens = 1'000'000;
std::int64_t thousandths(double tokens) noexcept {
  if (!std::isfinite(tokens) || tokens <= 0) return 0;
  return static_cast<std::int64_t>(std::min(tokens, double(max_max_tokens)) * 1000.0 + 1e-6);  // truncated, as gRPC
}
}  // namespace

RetryBudget::State::State(RetryBudgetOptions o) noexcept
    : options(o), max_milli(std::int64_t{std::clamp(o.max_tokens, 0, max_max_tokens)} * 1000),
      ratio_milli(thousandths(o.token_ratio)), milli(max_milli) {}

RetryBudget::RetryBudget(RetryBudgetOptions options) : state_(std::make_shared<State>(options)) {}

expected<RetryBudget, NetError> RetryBudget::make(RetryBudgetOptions options) {
  RetryBudget budget(options);
  if (auto ok = budget.check(); !ok) return unexpected(std::move(ok).error());
  return budget;
}

expected<void, NetError> RetryBudget::check() const {
  const RetryBudgetOptions& o = state_->options;
  if (o.max_tokens < 1 || o.max_tokens > max_max_tokens)
    return unexpected(invalid_option("RetryBudgetOptions::max_tokens",
                                     "is " + std::to_string(o.max_tokens) + ": it must be 1 to 1000000"));
  if (state_->ratio_milli < 1 || o.token_ratio > o.max_tokens)
    return unexpected(invalid_option("RetryBudgetOptions::token_ratio",
                                     "is " + std::to_string(o.token_ratio) +
                                         ": it must be 0.001 or more (thousandths count) and at most max_tokens"));
  return {};
}

namespace {
// Applies `next` (old -> new thousandths) to the bucket atomically; returns what it wrote.
template <class Next>
std::int64_t update(std::atomic<std::int64_t>& milli, Next next) noexcept {
  std::int64_t now = milli.load(std::memory_order_relaxed), then = next(now);
  while (then != now && !milli.compare_exchange_weak(now, then, std::memory_order_relaxed)) then = next(now);
  return then;
}
std::int64_t less_one_token(std::int64_t milli) noexcept { return std::max<std::int64_t>(0, milli - 1000); }
// gRPC's rule: a retry only while more than half the bucket is left after the failure's token.
bool retry_allowed(std::int64_t left, std::int64_t max_milli) noexcept { return left > max_milli / 2; }
}  // namespace

bool RetryBudget::record_failure() noexcept {
  const bool allowed = retry_allowed(update(state_->milli, less_one_token), state_->max_milli);
  if (!allowed) state_->refused.fetch_add(1, std::memory_order_relaxed);
  return allowed;
}

void RetryBudget::record_success() noexcept {
  update(state_->milli, [max = state_->max_milli, ratio = state_->ratio_milli](std::int64_t now) {
    return std::min(max, now + ratio);
  });
}

double RetryBudget::tokens() const noexcept { return double(state_->milli.load(std::memory_order_relaxed)) / 1000.0; }
bool RetryBudget::allows_retry() const noexcept {
  return retry_allowed(less_one_token(state_->milli.load(std::memory_order_relaxed)), state_->max_milli);
}
std::uint64_t RetryBudget::refused() const noexcept { return state_->refused.load(std::memory_order_relaxed); }

}  // namespace connpolicy
