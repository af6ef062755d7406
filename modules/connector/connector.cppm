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
      : problem_(configuration_problem()) {  // a policy's defaults may mean nothing too (its check())
    hand_clock();
  }
  // Every part of a connector, by name; each one left out is its type's default:
  //   Client client{{.bind = cp::FixedPortRotation{40000, 40009},
  //                  .options = {.connect_timeout = 200ms}, .observer = log_attempt}};
  struct Config {
    Bind bind{};
    Retry retry{};
    Error error{};
    System system{};  // the syscalls (tests: a FakeSystem)
    ConnectorOptions options{};
    Observer observer{};
  };
  // One clock for everything the connector does (ConnectorOptions::timer; the system's when
  // null): its waits, its race, the retry schedules' deadlines, and the bind policy's rests (a
  // policy with use_clock(timer) is handed it here; copies of a rotation share the last one).
  explicit Connector(Config config)
      : bind_(std::move(config.bind)), retry_(std::move(config.retry)), error_(std::move(config.error)),
        system_(std::move(config.system)), options_(config.options), observer_(std::move(config.observer)),
        problem_(configuration_problem()) {
    hand_clock();
  }
  // The two policies most connectors choose, in order; the rest as their types' defaults.
  explicit Connector(Bind bind, Retry retry = Retry{})
      : Connector(Config{.bind = std::move(bind), .retry = std::move(retry)}) {}

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
  // To a name through the system's resolver (getaddrinfo), stoppable.
  result_type connect(const HostPort& name, std::stop_token stop) { return connect(name, SystemResolver{}, stop); }

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
  using attempts_type = detail::AttemptSockets<socket_type>;
  // The loop over the core's commands; `names` looks up a name's addresses
  // (connector/name_lookups.cppm).
  template <class Names>
  result_type drive(core_type& core, std::stop_token stop, Names& names);
  // Command::Kind::open: socket, the plan's options, bind, connect; the outcome told to the core
  // when it is known already.
  void open(core_type& core, const Command& command, attempts_type& attempts);
  // Command::Kind::wait: until an attempt's outcome (connector/poll_race.cppm), an answer, the
  // stop, or the command's limit.
  template <class Names>
  void wait(core_type& core, const Command& command, attempts_type& attempts, std::stop_token stop, Names& names);
  void hand_clock() {
    constexpr bool has_hook = requires(Timer& clock) { bind_.use_clock(clock); };
    static_assert(
        has_hook || !requires { &Bind::use_clock; },
        "connpolicy: the optional hook 'use_clock' of this bind policy has the wrong shape and would "
        "never be called: declare it `void use_clock(Timer& clock)`");
    if constexpr (has_hook) bind_.use_clock(timer_or_system(options_.timer));
  }
  // Options that mean nothing, in the connector or a policy (`check()`): connect() refuses them.
  std::optional<NetError> configuration_problem() const {
    if (auto ok = check(options_); !ok) return std::move(ok).error();
    if (auto e = policy_problem(bind_)) return e;
    if (auto e = policy_problem(retry_)) return e;
    return policy_problem(error_);
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
  attempts_type attempts;  // closes what is left with a reset if anything below throws
  if constexpr (RacingSystemApi<System>) core.enable_race();
  bool stop_told = false;
  for (;;) {  // ends: the core bounds rebinds, endpoints, racers and rounds
    if (!stop_told && stop.stop_requested()) [[unlikely]] {
      stop_told = true;
      core.handle(Stopped{});
    }
    const Command command = core.poll();
    switch (command.kind) {
      case Command::Kind::look_up:
        if (auto answer = names.look_up(core.name(), command.lookup_limit); answer && !stop.stop_requested())
          core.handle(std::move(*answer));
        break;
      case Command::Kind::ask_census:  // a blocking driver may block: asked here, on the caller's thread
        try {
          core.census_question()->answer();
          core.handle(CensusAnswered{});
        } catch (...) {
          core.handle(CensusAnswered{std::current_exception()});
        }
        break;
      case Command::Kind::open: open(core, command, attempts); break;
      case Command::Kind::wait: wait(core, command, attempts, stop, names); break;
      case Command::Kind::close: attempts.close_reset(command.id); break;
      case Command::Kind::done: {
        // A hook's exception goes out last: the socket, if any, holds its lease and closes on the
        // way out.
        if (command.won) {
          socket_type* winner = attempts.find(command.id);
          result_type result(std::in_place, std::move(*winner));
          attempts.erase(command.id);
          result->attach_lease(core.take_lease());
          core.rethrow_hook_failure();
          return result;
        }
        NetError error = core.take_error();
        core.rethrow_hook_failure();
        return unexpected(std::move(error));
      }
    }
  }
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
void Connector<Bind, Retry, Error, System, Observer>::open(core_type& core, const Command& command,
                                                           attempts_type& attempts) {
  const BindPlan& plan = *command.plan;
  const Endpoint& remote = *command.remote;
  const AttemptId id = command.id;
  auto handle = system_.open_socket(remote.family(), /*nonblocking=*/true);
  if (!handle) return core.handle(Failed{id, Step::socket, handle.error()});
  try {
    attempts.add(id, *handle, system_);  // owned from here: an exception closes it with a reset
  } catch (...) {
    system_.close(*handle);  // no room to keep it (bad_alloc): never leaked
    throw;
  }
  // Closes first, so a port that goes back to its rotation is really free.
  const auto fail = [&](Step step, std::error_code ec, std::string detail = {}) {
    attempts.close(id);
    core.handle(Failed{id, step, ec, std::move(detail)});
  };
  for (const OptionRequest& o : plan.option_list())
    if (auto ec = system_.set_option(*handle, o.option, o.value); ec && o.required)
      return fail(Step::set_option, ec, std::string(to_string(o.option)));
  if (plan.local)
    if (auto ec = system_.bind(*handle, *plan.local)) return fail(Step::bind, ec);
  std::error_code ec = system_.connect(*handle, remote);
  if (is_in_progress(ec)) return;  // the wait that follows hears of it
  if (ec) return fail(Step::connect, ec);
  if (options_.blocking_result)
    if (auto e = system_.set_nonblocking(*handle, false)) return fail(Step::set_option, e, "FIONBIO");
  core.handle(Connected{id});
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, SystemApi System, ConnectObserver Observer>
template <class Names>
void Connector<Bind, Retry, Error, System, Observer>::wait(core_type& core, const Command& command,
                                                           attempts_type& attempts, std::stop_token stop,
                                                           Names& names) {
  if (!attempts.empty()) {
    return detail::wait_for_attempts(core, system_, attempts, command, stop, names, options_.blocking_result);
  }
  if (command.answers_due) {  // a name's lookups are out, and nothing else
    if (auto answer = names.next(command.until))
      core.handle(std::move(*answer));
    else if (stop.stop_requested())
      core.handle(Stopped{});
    else
      core.handle(Woke{});
    return;
  }
  Timer& clock = timer_or_system(options_.timer);
  if (clock.sleep_for(command.limit, stop))
    core.handle(Woke{});
  else
    core.handle(Stopped{});
}

}  // namespace connpolicy
