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

bool RetryBudget::record_failure() noexcept {
  std::int64_t now = state_->milli.load(std::memory_order_relaxed), next;
  do {
    next = std::max<std::int64_t>(0, now - 1000);
  } while (!state_->milli.compare_exchange_weak(now, next, std::memory_order_relaxed));
  const bool allowed = next > state_->max_milli / 2;
  if (!allowed) state_->refused.fetch_add(1, std::memory_order_relaxed);
  return allowed;
}

void RetryBudget::record_success() noexcept {
  std::int64_t now = state_->milli.load(std::memory_order_relaxed), next;
  do {
    next = std::min(state_->max_milli, now + state_->ratio_milli);
  } while (next != now && !state_->milli.compare_exchange_weak(now, next, std::memory_order_relaxed));
}

double RetryBudget::tokens() const noexcept { return double(state_->milli.load(std::memory_order_relaxed)) / 1000.0; }
bool RetryBudget::allows_retry() const noexcept {
  return state_->milli.load(std::memory_order_relaxed) - 1000 > state_->max_milli / 2;
}
std::uint64_t RetryBudget::refused() const noexcept { return state_->refused.load(std::memory_order_relaxed); }

}  // namespace connpolicy
