// Connector<Bind, Retry, Error, System, Observer>: the loop that asks the policies. Nothing else.
//
//   using Client = connpolicy::Connector<connpolicy::FixedPortRotation,
//                                        connpolicy::ExponentialRetry,
//                                        connpolicy::DefaultErrorPolicy>;
//   Client client{connpolicy::FixedPortRotation{40000, 40009},
//                 connpolicy::ExponentialRetry{{.initial = 50ms, .max_attempts = 6}}};
//   auto socket = client.connect(connpolicy::Endpoint::parse("127.0.0.1:7000").value());
//
// Each attempt: bind policy's plan -> socket (non-blocking, close-on-exec) -> options -> bind ->
// connect -> wait (per-attempt timeout, the retry deadline, the stop_token) -> success: the
// Socket (blocking again unless asked otherwise, holding the port's lease). On failure the error
// policy picks rebind / next endpoint / retry (after the retry policy's wait) / give up. Every
// failing path closes what it opened; the NetError says the step, both addresses, the OS code
// and the number of attempts.
//
// connect() may be called from several threads at once when the policies allow it (all of
// connpolicy's do).
module;
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
export module connpolicy.connector;
import connpolicy.core;
import connpolicy.bind;
import connpolicy.retry;
import connpolicy.errors;
export import :options;
export import :events;

export namespace connpolicy {

template <BindPolicy Bind = NoBind, RetryPolicy Retry = NoRetry, ErrorPolicy Error = DefaultErrorPolicy,
          SystemApi System = NativeSystem, ConnectObserver Observer = NoObserver>
class Connector {
 public:
  using bind_policy_type = Bind;
  using retry_policy_type = Retry;
  using error_policy_type = Error;
  using system_type = System;
  using observer_type = Observer;
  using socket_type = BasicSocket<System>;
  using result_type = expected<socket_type, NetError>;

  Connector()
    requires std::default_initializable<Bind> && std::default_initializable<Retry> &&
                 std::default_initializable<Error> && std::default_initializable<System> &&
                 std::default_initializable<Observer>
  = default;
  explicit Connector(Bind bind, Retry retry = Retry{}, Error error = Error{}, System system = System{},
                     ConnectorOptions options = {}, Observer observer = Observer{})
      : bind_(std::move(bind)), retry_(std::move(retry)), error_(std::move(error)), system_(std::move(system)),
        options_(options), observer_(std::move(observer)), problem_(configuration_problem()) {}

  result_type connect(const Endpoint& remote) { return connect(std::span(&remote, 1), std::stop_token{}); }
  result_type connect(const Endpoint& remote, std::stop_token stop) { return connect(std::span(&remote, 1), stop); }
  // Tries the endpoints in order (e.g. the addresses a name resolved to).
  result_type connect(std::span<const Endpoint> remotes) { return connect(remotes, std::stop_token{}); }
  result_type connect(std::span<const Endpoint> remotes, std::stop_token stop);

  Bind& bind_policy() noexcept { return bind_; }
  const Bind& bind_policy() const noexcept { return bind_; }
  Retry& retry_policy() noexcept { return retry_; }
  const Retry& retry_policy() const noexcept { return retry_; }
  Error& error_policy() noexcept { return error_; }
  const Error& error_policy() const noexcept { return error_; }
  System& system() noexcept { return system_; }
  Observer& observer() noexcept { return observer_; }
  const ConnectorOptions& options() const noexcept { return options_; }

 private:
  using schedule_type = typename Retry::schedule_type;
  result_type attempt(const Endpoint& remote, const schedule_type& schedule, std::stop_token stop, int& attempts);
  // Options that mean nothing, in the connector or a policy (`check()`): connect() refuses them.
  std::optional<NetError> configuration_problem() const {
    if (auto ok = check(options_); !ok) return std::move(ok).error();
    if (auto e = policy_problem(bind_)) return e;
    if (auto e = policy_problem(retry_)) return e;
    return policy_problem(error_);
  }
  std::error_code wait_connected(native_handle_type h, const schedule_type& schedule, std::stop_token stop);
  void observe(const Endpoint& remote, const std::optional<Endpoint>& local, int attempt, const NetError* error,
               std::optional<Action> action, Timer::duration delay) {
    if constexpr (!std::is_same_v<Observer, NoObserver>) {
      observer_(AttemptEvent{remote, local, attempt, error ? error->step() : Step::connect,
                             error ? error->code() : std::error_code{}, error ? error->condition() : Errc::other,
                             action, delay});
    }
  }

  [[no_unique_address]] Bind bind_{};
  [[no_unique_address]] Retry retry_{};
  [[no_unique_address]] Error error_{};
  [[no_unique_address]] System system_{};
  ConnectorOptions options_{};
  [[no_unique_address]] Observer observer_{};
  std::optional<NetError> problem_;  // from configuration_problem(), once
};

// ---------------------------------------------------------------------------------------------
// The loop.

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
auto Connector<Bind, Retry, Error, System, Observer>::connect(std::span<const Endpoint> remotes, std::stop_token stop)
    -> result_type {
  if (problem_) [[unlikely]]
    return unexpected(*problem_);
  if (remotes.empty())
    return unexpected(NetError(Step::connect, LibraryError::invalid_endpoint, "no endpoint to connect to"));
  for (const Endpoint& remote : remotes)  // refused before any syscall: nothing is sent to them
    if (const char* why = not_a_destination(remote))
      return unexpected(NetError(Step::connect, LibraryError::invalid_endpoint, why).with_remote(remote));
  schedule_type schedule = retry_.schedule();
  int attempts = 0, rebinds = 0;
  std::size_t current = 0;
  for (;;) {  // ends: every pass rebinds (<= max_rebinds a round), moves on (<= endpoints), waits
              // (the retry policy bounds the rounds) or returns
    const Endpoint& remote = remotes[current];
    if (stop.stop_requested())
      return unexpected(NetError(Step::connect, LibraryError::cancelled).with_remote(remote).with_attempts(attempts));
    result_type result = attempt(remote, schedule, stop, attempts);
    if (result) return result;
    NetError error = std::move(result).error().with_attempts(attempts);
    const bool has_next = current + 1 < remotes.size();
    Action action = error_.classify(Failure{error, Bind::can_rebind && rebinds < options_.max_rebinds, has_next});
    if (action == Action::next_endpoint && !has_next) action = Action::retry;
    Timer::duration delay{};
    if (action == Action::retry) {
      if (auto d = schedule.next_delay(error)) {
        delay = *d;
      } else {
        action = Action::give_up;
        error.with_detail(error.detail() + (error.detail().empty() ? "" : "; ") +
                          "gave up: " + std::string(to_string(d.error())));
      }
    }
    observe(remote, error.local_endpoint(), attempts, &error, action, delay);
    switch (action) {
      case Action::rebind: ++rebinds; break;
      case Action::next_endpoint: ++current; break;
      case Action::retry:
        if (!retry_.sleep(delay, stop))
          return unexpected(NetError(Step::wait, LibraryError::cancelled)
                                .with_remote(remote)
                                .with_attempts(attempts)
                                .with_detail("while waiting to retry after: " + error.message()));
        current = 0;
        rebinds = 0;
        break;
      case Action::give_up: return unexpected(std::move(error));
    }
  }
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
auto Connector<Bind, Retry, Error, System, Observer>::attempt(const Endpoint& remote, const schedule_type& schedule,
                                                              std::stop_token stop, int& attempts) -> result_type {
  auto plan = bind_.plan(remote);
  if (!plan) return unexpected(std::move(plan).error().with_remote(remote));
  socket_type socket;
  // Closes first, so a port that goes back to its rotation is really free.
  const auto fail = [&](Step step, std::error_code ec, std::string detail = {}) -> result_type {
    socket.close();
    NetError error(step, ec);
    error.with_remote(remote).with_detail(std::move(detail));
    if (plan->local) error.with_local(*plan->local);
    bind_.failed(*plan, error);
    return unexpected(std::move(error));
  };
  if (plan->local)
    if (const char* why = not_a_source(*plan->local)) {  // refused before any syscall
      NetError error = NetError(Step::bind, LibraryError::invalid_endpoint, why).with_local(*plan->local);
      bind_.failed(*plan, error);
      return unexpected(std::move(error).with_remote(remote));
    }
  ++attempts;  // from here on, syscalls are made: an attempt
  auto handle = system_.open_socket(remote.family(), /*nonblocking=*/true);
  if (!handle) return fail(Step::socket, handle.error());
  socket = socket_type(*handle, system_);
  for (const OptionRequest& o : plan->option_list())
    if (auto ec = system_.set_option(*handle, o.option, o.value); ec && o.required)
      return fail(Step::set_option, ec, std::string(to_string(o.option)));
  if (plan->local)
    if (auto ec = system_.bind(*handle, *plan->local)) return fail(Step::bind, ec);
  std::error_code ec = system_.connect(*handle, remote);
  if (is_in_progress(ec)) {
    if (auto waited = wait_connected(*handle, schedule, stop)) {
      const bool timeout = waited == Errc::timed_out;
      return fail(Step::wait, waited,
                  timeout ? "no answer within " + std::to_string(options_.connect_timeout.count()) + " ms" : "");
    }
    ec = system_.pending_error(*handle);
  }
  if (ec) return fail(Step::connect, ec);
  if (options_.blocking_result)
    if (auto e = system_.set_nonblocking(*handle, false)) return fail(Step::set_option, e, "FIONBIO");
  socket.attach_lease(std::move(plan->lease));
  observe(remote, plan->local, attempts, nullptr, std::nullopt, {});
  return socket;
}

// Waits for the connect to finish within the per-attempt timeout and the retry deadline. With a
// stop_token that can fire, waits in slices so a stop ends the wait within one slice.
template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
std::error_code Connector<Bind, Retry, Error, System, Observer>::wait_connected(native_handle_type h,
                                                                                const schedule_type& schedule,
                                                                                std::stop_token stop) {
  using std::chrono::milliseconds;
  milliseconds left = options_.connect_timeout;
  bool deadline_bound = false;
  if (auto t = schedule.time_left(); t && std::chrono::ceil<milliseconds>(*t) < left) {
    left = std::chrono::ceil<milliseconds>(*t);
    deadline_bound = true;
  }
  const milliseconds slice = stop.stop_possible() ? milliseconds(50) : left;
  for (int interrupts = 0;;) {
    const milliseconds step = std::min(left, slice);
    auto ready = system_.wait_writable(h, step);
    if (ready && *ready) return {};
    if (!ready) {
      // NativeSystem resumes its own waits after a signal; another system may report EINTR:
      // wait the step again, up to 1000 times (no clock read on the common path).
      if (ready.error() != std::errc::interrupted || ++interrupts > 1000) return ready.error();
      continue;
    }
    left -= step;  // timed out: the whole step passed
    if (stop.stop_requested()) return make_error_code(LibraryError::cancelled);
    if (left <= milliseconds::zero())
      return deadline_bound ? make_error_code(LibraryError::deadline_exceeded) : make_system_error(ETIMEDOUT);
  }
}

}  // namespace connpolicy
