// Connector<Bind, Retry, Error, System, Observer>: the blocking driver. It runs the decision core
// (ConnectCore: which plan, rebind / next endpoint / retry / give up, attempts, deadline, events)
// and does what the core asks with blocking syscalls on the calling thread.
//
//   using Client = connpolicy::Connector<connpolicy::FixedPortRotation,
//                                        connpolicy::ExponentialRetry,
//                                        connpolicy::DefaultErrorPolicy>;
//   Client client{connpolicy::FixedPortRotation{40000, 40009},
//                 connpolicy::ExponentialRetry{{.initial = 50ms, .max_attempts = 6}}};
//   auto socket = client.connect(connpolicy::Endpoint::parse("127.0.0.1:7000").value());
//
// Each attempt: socket (non-blocking, close-on-exec) -> the plan's options -> bind -> connect ->
// wait (per-attempt timeout, the retry deadline, the stop_token) -> success: the Socket (blocking
// again unless asked otherwise, holding the port's lease). Every failing path closes what it
// opened before the core hears of it; the NetError says the step, both addresses, the OS code and
// the number of attempts. For an event loop, see connpolicy.asio's async_connect: same core.
//
// connect() may be called from several threads at once when the policies allow it (all of
// connpolicy's do).
module;
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>
export module connpolicy.connector;
import connpolicy.core;
import connpolicy.bind;
import connpolicy.retry;
import connpolicy.errors;
export import connpolicy.decision;
import :poll_race;
import :name_lookups;

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
  {
    hand_clock();
  }
  // One clock for everything the connector does (ConnectorOptions::timer; the system's when
  // null): its waits, its race, the retry schedules' deadlines, and the bind policy's rests (a
  // policy with use_clock(timer) is handed it here; copies of a rotation share the last one).
  explicit Connector(Bind bind, Retry retry = Retry{}, Error error = Error{}, System system = System{},
                     ConnectorOptions options = {}, Observer observer = Observer{})
      : bind_(std::move(bind)), retry_(std::move(retry)), error_(std::move(error)), system_(std::move(system)),
        options_(options), observer_(std::move(observer)), problem_(configuration_problem()) {
    hand_clock();
  }

  result_type connect(const Endpoint& remote) { return connect(std::span(&remote, 1), std::stop_token{}); }
  result_type connect(const Endpoint& remote, std::stop_token stop) { return connect(std::span(&remote, 1), stop); }
  // Tries the endpoints in order (e.g. the addresses a name resolved to).
  result_type connect(std::span<const Endpoint> remotes) { return connect(remotes, std::stop_token{}); }
  result_type connect(std::span<const Endpoint> remotes, std::stop_token stop);
  // To a name: its IPv6 and IPv4 addresses are looked up (each within the per-attempt timeout
  // and the retry deadline, and again before each retry round), then tried IPv6 first,
  // alternating families. A BothFamiliesResolver (SystemResolver is one) is asked for both at
  // once, and the first attempt starts with the first answer's addresses (IPv4's after the
  // resolution delay). A numeric HostPort needs no lookup.
  template <Resolver R = SystemResolver>
  result_type connect(const HostPort& name, R&& resolver = R{}, std::stop_token stop = {});

  Bind& bind_policy() noexcept { return bind_; }
  const Bind& bind_policy() const noexcept { return bind_; }
  Retry& retry_policy() noexcept { return retry_; }
  const Retry& retry_policy() const noexcept { return retry_; }
  Error& error_policy() noexcept { return error_; }
  const Error& error_policy() const noexcept { return error_; }
  System& system() noexcept { return system_; }
  Observer& observer() noexcept { return observer_; }
  const ConnectorOptions& options() const noexcept { return options_; }
  // What the configuration checks found (options or a policy's check()), once, at construction:
  // every connect() ends with it before any syscall. Empty when all is well.
  const std::optional<NetError>& configuration_error() const noexcept { return problem_; }

 private:
  using core_type = ConnectCore<Bind, Retry, Error, Observer>;
  // The loop of the core; `names` looks up a name's addresses (connector/name_lookups.cppm).
  template <class Names>
  result_type drive(core_type& core, std::stop_token stop, Names& names);
  using racers_type = std::vector<detail::RacingSocket<socket_type>>;
  // One attempt, as core.plan() says: Next::done with `socket` set when it connected; in a race,
  // a connect in progress joins `racers`.
  Next attempt(core_type& core, std::stop_token stop, socket_type& socket, racers_type& racers, Timer& clock);
  void hand_clock() {
    if constexpr (requires(Timer& clock) { bind_.use_clock(clock); }) bind_.use_clock(timer_or_system(options_.timer));
  }
  // Options that mean nothing, in the connector or a policy (`check()`): connect() refuses them.
  std::optional<NetError> configuration_problem() const {
    if (auto ok = check(options_); !ok) return std::move(ok).error();
    if (auto e = policy_problem(bind_)) return e;
    if (auto e = policy_problem(retry_)) return e;
    return policy_problem(error_);
  }
  // ready: writable (connected or failed: read SO_ERROR). failed: `ec` says why.
  enum class Waited : std::uint8_t { ready, timed_out, cancelled, failed };
  Waited wait_connected(native_handle_type h, std::chrono::milliseconds limit, std::stop_token stop,
                        std::error_code& ec);

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
  core_type core(bind_, retry_, error_, options_, observer_, remotes, problem_ ? &*problem_ : nullptr);
  detail::NoNames names;
  return drive(core, stop, names);
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
template <Resolver R>
auto Connector<Bind, Retry, Error, System, Observer>::connect(const HostPort& name, R&& resolver, std::stop_token stop)
    -> result_type {
  core_type core(bind_, retry_, error_, options_, observer_, name, problem_ ? &*problem_ : nullptr);
  if constexpr (BothFamiliesResolver<std::remove_reference_t<R>>) {
    detail::BothFamiliesAtOnce<std::remove_reference_t<R>> names{resolver, stop, timer_or_system(options_.timer)};
    return drive(core, stop, names);
  } else {
    detail::OneFamilyAtATime<std::remove_reference_t<R>> names{resolver, stop};
    return drive(core, stop, names);
  }
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
template <class Names>
auto Connector<Bind, Retry, Error, System, Observer>::drive(core_type& core, std::stop_token stop, Names& names)
    -> result_type {
  socket_type socket;
  racers_type racers;
  Timer& clock = timer_or_system(options_.timer);
  if constexpr (RacingSystemApi<System>) core.enable_race();
  for (Next next = core.start();;) {  // ends: the core bounds rebinds, endpoints, racers and rounds
    switch (next) {
      case Next::resolve: next = names.resolve(core); break;
      case Next::lookup_wait: next = names.wait(core); break;
      case Next::attempt: next = core.prepare(stop.stop_requested()); break;
      case Next::census:  // a blocking driver may block: asked here, on the caller's thread
        try {
          core.census_question().answer();
          next = core.census_answered();
        } catch (...) {
          next = core.census_failed(std::current_exception());
        }
        break;
      case Next::connect: next = attempt(core, stop, socket, racers, clock); break;
      case Next::wait: next = core.waited(clock.sleep_for(core.delay(), stop)); break;
      case Next::race:
        if constexpr (RacingSystemApi<System>) {
          if (auto late = names.poll(core))
            next = *late;  // a family's answer came in meanwhile
          else
            next = detail::race_step(core, system_, clock, stop, racers, socket, options_.blocking_result);
        } else
          next = core.stopped();  // never: the core races only when enabled
        break;
      case Next::done: {
        detail::close_racers(racers);
        // A hook's exception goes out last: the socket, if any, holds its lease and closes on the
        // way out; take_error() gives back (and tells the observer of) the racers' ports first.
        std::optional<NetError> error;
        if (!core.succeeded()) error.emplace(core.take_error());
        core.rethrow_hook_failure();
        if (error) return unexpected(std::move(*error));
        return socket;
      }
    }
  }
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
Next Connector<Bind, Retry, Error, System, Observer>::attempt(core_type& core, std::stop_token stop,
                                                              socket_type& socket, racers_type& racers, Timer& clock) {
  const BindPlan& plan = core.plan();
  const Endpoint& remote = core.remote();
  // Closes first, so a port that goes back to its rotation is really free.
  const auto fail = [&](Step step, std::error_code ec, std::string detail = {}) {
    socket.close();
    return core.failed(step, ec, std::move(detail));
  };
  auto handle = system_.open_socket(remote.family(), /*nonblocking=*/true);
  if (!handle) return core.failed(Step::socket, handle.error());
  socket = socket_type(*handle, system_);
  for (const OptionRequest& o : plan.option_list())
    if (auto ec = system_.set_option(*handle, o.option, o.value); ec && o.required)
      return fail(Step::set_option, ec, std::string(to_string(o.option)));
  if (plan.local)
    if (auto ec = system_.bind(*handle, *plan.local)) return fail(Step::bind, ec);
  std::error_code ec = system_.connect(*handle, remote);
  if (is_in_progress(ec) && core.racing()) {
    racers.push_back({core.launched(clock.now()), std::move(socket)});
    return Next::race;
  }
  if (is_in_progress(ec)) {
    switch (wait_connected(*handle, core.attempt_timeout().limit, stop, ec)) {
      case Waited::ready: ec = system_.pending_error(*handle); break;
      // The connect may have completed as the wait ended: a reset leaves no TIME_WAIT on a port
      // the rotation takes back as unused.
      case Waited::timed_out: socket.close_reset(); return core.timed_out();
      case Waited::cancelled:
        socket.close_reset();
        return core.failed(Step::wait, make_error_code(LibraryError::cancelled));
      case Waited::failed: return fail(Step::wait, ec);
    }
  }
  if (ec) return fail(Step::connect, ec);
  if (options_.blocking_result)
    if (auto e = system_.set_nonblocking(*handle, false)) return fail(Step::set_option, e, "FIONBIO");
  detail::close_racers(racers);
  socket.attach_lease(core.connected());
  return Next::done;
}

// Waits for the connect to finish within `limit`. With a stop_token that can fire, waits in
// slices so a stop ends the wait within one slice.
template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
auto Connector<Bind, Retry, Error, System, Observer>::wait_connected(native_handle_type h,
                                                                     std::chrono::milliseconds limit,
                                                                     std::stop_token stop, std::error_code& ec)
    -> Waited {
  using std::chrono::milliseconds;
  milliseconds left = limit;
  const milliseconds slice = stop.stop_possible() ? milliseconds(50) : left;
  for (int interrupts = 0;;) {
    const milliseconds step = std::min(left, slice);
    auto ready = system_.wait_writable(h, step);
    if (ready && *ready) return Waited::ready;
    if (!ready) {
      // NativeSystem resumes its own waits after a signal; another system may report EINTR:
      // wait the step again, up to 1000 times (no clock read on the common path).
      if (ready.error() != std::errc::interrupted || ++interrupts > 1000) {
        ec = ready.error();
        return Waited::failed;
      }
      continue;
    }
    left -= step;  // timed out: the whole step passed
    if (stop.stop_requested()) return Waited::cancelled;
    if (left <= milliseconds::zero()) return Waited::timed_out;
  }
}

}  // namespace connpolicy
