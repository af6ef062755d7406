// connpolicy.retry: whether and when to try again.
//   NoRetry          one round
//   FixedDelayRetry  the same wait each round
//   ExponentialRetry growing waits with jitter (none / full / equal / decorrelated)
export module connpolicy.retry;
export import :schedule;
export import :no_retry;
export import :fixed_delay_retry;
export import :exponential_retry;
