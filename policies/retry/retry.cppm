// connpolicy.retry: whether and when to try again.
//   NoRetry          one round
//   FixedDelayRetry  the same wait each round
//   ExponentialRetry growing waits with jitter (none / full / equal / decorrelated)
//   Budgeted<R>      any of them, capped by a RetryBudget shared with other connects
export module connpolicy.retry;
export import :schedule;
export import :no_retry;
export import :fixed_delay_retry;
export import :exponential_retry;
export import :retry_budget;
export import :budgeted;
