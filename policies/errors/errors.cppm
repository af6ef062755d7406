// connpolicy.errors: what to do after a failed attempt.
//   DefaultErrorPolicy  rebind / next endpoint / retry / give up, by condition and step
//   FailFast            never wait
export module connpolicy.errors;
export import :action;
export import :default_error_policy;
export import :fail_fast;
