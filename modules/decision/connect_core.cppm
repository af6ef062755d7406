// ConnectCore: every decision of a connect, and no I/O. It never makes a syscall and never
// waits: it says what to do next, and is told what happened. The blocking Connector and the Asio
// driver both run it, so a policy behaves the same under either. How a driver runs it:
// module connpolicy.decision's front page (decision.cppm).
//
// The success path (start, prepare, connected) is forced inline: calls cost ~40 instructions (P1).
//
// Use when: you write a driver of your own (another event loop, io_uring). Drive it from one
// thread at a time; the policies it asks are shared and thread-safe.
module;
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>
export module connpolicy.decision:connect_core;
import connpolicy.core;
import connpolicy.bind;
import connpolicy.retry;
import connpolicy.errors;
import :options;
import :events;
import :race_book;
import :lookup_book;
import :next;

export namespace connpolicy {

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer = NoObserver>
class ConnectCore {
 public:
  using schedule_type = typename Retry::schedule_type;

  // Holds references: the policies, options, observer, endpoints and `problem` (a configuration
  // error found earlier, which every connect ends with; or null) outlive the core.
  ConnectCore(Bind& bind, const Retry& retry, const Error& error, const ConnectorOptions& options, Observer& observer,
              std::span<const Endpoint> remotes, const NetError* problem = nullptr)
      : bind_(&bind), error_policy_(&error), options_(&options), observer_(&observer), remotes_(remotes),
        problem_(problem), schedule_(retry.schedule(timer_or_system(options.timer))) {}
  // To a name: its addresses are looked up first (Next::resolve), and again before each retry
  // round, since a name's addresses may change while a server is down.
  ConnectCore(Bind& bind, const Retry& retry, const Error& error, const ConnectorOptions& options, Observer& observer,
              const HostPort& name, const NetError* problem = nullptr)
      : ConnectCore(bind, retry, error, options, observer, std::span<const Endpoint>{}, problem) {
    name_ = &name;
    unresolved_ = Endpoint::any_v4(name.port());
    if (name.numeric()) resolved_.push_back(*name.numeric());
    remotes_ = resolved_;
  }

  // A driver that stops early (an exception, an io_context destroyed with the operation pending)
  // has closed its sockets: the racers' ports and the attempt in hand's go back, as never used.
  ~ConnectCore() {
    release_racers();
    if (plan_ && plan_->lease) plan_->lease->on_close(CloseKind::reset);
  }
  ConnectCore(const ConnectCore&) = delete;
  ConnectCore& operator=(const ConnectCore&) = delete;

  // Refuses what no attempt could fix (bad configuration, no endpoint, a destination TCP cannot
  // use) before any syscall; otherwise the first attempt.
  [[gnu::always_inline]] Next start() {
    if (problem_) [[unlikely]]
      return finish(NetError(*problem_));
    if (name_ && remotes_.empty()) return Next::resolve;
    return check_destinations();
  }

  // For Next::resolve: the name, and how long the lookup may take (the per-attempt timeout, or
  // what is left until the retry deadline when that is sooner).
  const HostPort& name() const noexcept { return *name_; }
  std::chrono::milliseconds resolve_timeout() const noexcept {
    return std::max(attempt_limit(options_->connect_timeout, schedule_.time_left()).limit,
                    std::chrono::milliseconds(1));
  }
  // The name's addresses, per family (either may be empty): IPv6 first, then alternating
  // families (RFC 8305, section 4), each family in the resolver's order.
  Next resolved(std::span<const Endpoint> v6, std::span<const Endpoint> v4);
  // Each family's answer: a failure decides only when the other has no address (IPv4's if both).
  Next resolved(const expected<std::vector<Endpoint>, NetError>& v6,
                const expected<std::vector<Endpoint>, NetError>& v4);
  // The lookup failed (the resolver's error, Step::resolve; its detail names the name).
  Next resolve_failed(NetError error) { return decide(std::move(error), false); }

  // --- Both families asked at once (RFC 8305): each answer as it comes. The race may begin before
  // the second: with IPv6's addresses at once, with IPv4's at lookup_wake_at() (Next::lookup_wait:
  // the other answer, or lookup_woke() then). While awaiting_answer(), a racing driver looks for
  // it between waits; lookup_stopped() when a stop comes while waiting for it.
  Next lookup_answered(Family family, expected<std::vector<Endpoint>, NetError> answer, Timer::time_point now);
  Timer::time_point lookup_wake_at() const noexcept { return lookup_.wake_at(); }
  Next lookup_woke(Timer::time_point now);
  bool awaiting_answer() const noexcept { return lookup_.awaiting(); }
  Next lookup_stopped() {
    return finish(
        NetError(Step::resolve, LibraryError::cancelled).with_detail(name_->to_string()).with_attempts(attempts_));
  }

 private:
  bool can_race() const noexcept { return race_enabled_ && options_->attempt_delay.count() > 0; }
  Next begin(Family family);  // the race, with one family's addresses (below)
  Next join(Family family);   // the other's, come late
  [[gnu::always_inline]] Next check_destinations() {
    if (auto problem = destinations_problem(remotes_)) [[unlikely]]
      return finish(std::move(*problem));
    return Next::attempt;
  }

 public:
  // Plans the next attempt: Next::connect when there is one to make (it counts as an attempt
  // from here: syscalls follow), or whatever the failure to plan leads to.
  [[gnu::always_inline]] Next prepare(bool stop_requested) {
    const Endpoint& to = remote();
    if (stop_requested)
      return finish(NetError(Step::connect, LibraryError::cancelled).with_remote(to).with_attempts(attempts_));
    auto plan = plan_for(to);
    if constexpr (AsksCensus<Bind>) {
      if (census_.question && !census_.answered) [[unlikely]]
        return Next::census;
      if (census_.question) census_ = {};
    }
    if (!plan) return decide(std::move(plan).error().with_remote(to), false);
    plan_ = std::move(*plan);
    if (plan_->local)
      if (const char* why = not_a_source(*plan_->local)) {  // refused before any syscall
        NetError error = NetError(Step::bind, LibraryError::invalid_endpoint, why).with_local(*plan_->local);
        bind_->failed(*plan_, error);
        plan_.reset();
        return decide(std::move(error).with_remote(to), false);
      }
    ++attempts_;
    timeout_ = attempt_limit(options_->connect_timeout, schedule_.time_left());
    if constexpr (observed) started_ = timer_or_system(options_->timer).now();
    return Next::connect;
  }

  // For Next::census: the bind policy's question (FixedPortRotation's census), to answer where a
  // thread may block; then census_answered(), which plans again, or census_failed() with what
  // answer() threw (the connect ends and the driver rethrows it once everything is put away).
  CensusQuestion& census_question() const noexcept { return *census_.question; }
  std::shared_ptr<CensusQuestion> census_question_shared() const noexcept { return census_.question; }
  Next census_answered() noexcept {
    census_.answered = true;
    return Next::attempt;
  }
  Next census_failed(std::exception_ptr thrown) {
    census_ = {};
    if (!hook_failure_) hook_failure_ = std::move(thrown);
    return finish(NetError(Step::bind, LibraryError::cancelled, "the census threw")
                      .with_remote(remote())
                      .with_attempts(attempts_));
  }

  // For Next::connect (before a name is resolved: the unspecified address, with the name's port).
  const Endpoint& remote() const noexcept { return remotes_.empty() ? unresolved_ : remotes_[current_]; }
  const BindPlan& plan() const noexcept { return *plan_; }
  // Fixed when the attempt was planned: the per-attempt timeout, or what is left until the
  // retry deadline when that is sooner.
  AttemptTimeout attempt_timeout() const noexcept { return timeout_; }

  // The attempt connected. Returns the port's lease, for the socket to hold.
  [[gnu::always_inline]] std::shared_ptr<PortLease> connected() {
    observe(remote(), plan_->local, nullptr, std::nullopt, {});
    succeeded_ = true;
    report_success(schedule_);  // a budgeted schedule refills its budget
    std::shared_ptr<PortLease> lease = std::move(plan_->lease);
    plan_.reset();
    if (racing_) [[unlikely]]
      release_racers("another address won the race");
    return lease;
  }
  // The attempt failed at `step` (the driver has closed its socket already, so a port that goes
  // back to its rotation is really free).
  Next failed(Step step, std::error_code ec, std::string detail = {}) {
    NetError error(step, ec);
    error.with_remote(remote()).with_detail(std::move(detail));
    if (plan_->local) error.with_local(*plan_->local);
    bind_->failed(*plan_, error);
    plan_.reset();
    return decide(std::move(error));
  }
  // The attempt's wait ran out: attempt_timeout().limit passed without an answer.
  Next timed_out() {
    if (timeout_.deadline_bound) return failed(Step::wait, make_error_code(LibraryError::deadline_exceeded));
    return failed(Step::wait, make_system_error(ETIMEDOUT),
                  "no answer within " + std::to_string(options_->connect_timeout.count()) + " ms");
  }

  // --- The race (decision.cppm says how a driver runs it), for drivers that enable it.
  void enable_race() noexcept { race_enabled_ = true; }
  bool racing() const noexcept { return racing_; }
  // The connect() just made is in progress: it joins the race under the id returned.
  std::size_t launched(Timer::time_point now) {
    return race_.launch(current_, std::move(*std::exchange(plan_, std::nullopt)), timeout_, now, started_);
  }
  // For Next::race: a racer's deadline, or the next address's turn, whichever comes first.
  Timer::time_point wake_at() const noexcept { return race_.wake_at(stagger()); }
  // Racer `id` answered (or is overdue): connected(), failed() and timed_out() now speak of it.
  void answered(std::size_t id) {
    detail::Racer r = race_.take(id).value();
    std::tie(current_, plan_, timeout_, started_) = std::tuple(r.address, std::move(r.plan), r.timeout, r.started);
  }
  // A racer whose attempt timeout has passed by `now`, if any.
  std::optional<std::size_t> overdue(Timer::time_point now) const noexcept { return race_.overdue(now); }
  // Nothing answered by wake_at(): the next address's turn has come, or wait on.
  Next woke(Timer::time_point now) {
    if (auto s = stagger(); s && (!race_.in_flight() || now >= saturating_add(race_.last_start(), *s))) {
      current_ = race_.take_next();
      return Next::attempt;
    }
    return Next::race;
  }
  // The stop_token fired while racing.
  Next stopped() {
    return finish(NetError(Step::wait, LibraryError::cancelled).with_remote(remote()).with_attempts(attempts_));
  }

  // For Next::wait: how long, and then whether the wait ran its course (false: stopped).
  Timer::duration delay() const noexcept { return delay_; }
  Next waited(bool completed) {
    if (!completed)
      return finish(NetError(Step::wait, LibraryError::cancelled)
                        .with_remote(remote())
                        .with_attempts(attempts_)
                        .with_detail("while waiting to retry after: " + last_->message()));
    current_ = 0;
    rebinds_ = 0;
    race_.new_round();
    racing_ = false;  // until resolved() says again
    lookup_.reset();
    if (name_ && !name_->numeric()) {
      remotes_ = {};
      return Next::resolve;
    }
    return Next::attempt;
  }

  // For Next::done.
  bool succeeded() const noexcept { return succeeded_; }
  // For Next::done, after the driver has put everything away (the socket holds its lease): a
  // user hook (the observer) that threw ended the operation at once, and its exception goes to
  // the caller now. Nothing is lent or open by then.
  void rethrow_hook_failure() {
    if (auto failure = std::exchange(hook_failure_, nullptr)) std::rethrow_exception(failure);
  }
  NetError take_error() {
    release_racers("the connect ended with it in flight");
    return std::move(*last_);
  }
  int attempts() const noexcept { return attempts_; }

 private:
  expected<BindPlan, NetError> plan_for(const Endpoint& to) {
    if constexpr (AsksCensus<Bind>)
      return bind_->plan(to, census_);
    else
      return bind_->plan(to);
  }
  // The error policy's word on a failure, and the retry schedule's when it says retry.
  Next decide(NetError error, bool attempted = true) {  // attempted: syscalls were made for it
    error.with_attempts(attempts_);
    const bool has_next = racing_ ? race_.has_next(remotes_.size()) : current_ + 1 < remotes_.size();
    const bool may_rebind = rebinds_ < options_->max_rebinds;
    Action action = error_policy_->classify(Failure{error, Bind::can_rebind && may_rebind, has_next,
                                                    attempted && can_change_address<Bind>() && may_rebind});
    if (action != Action::rebind && (remotes_.size() > 1 || lookup_.awaiting())) race_.failed(error);  // address done
    if (racing_ && action != Action::rebind && action != Action::give_up) {
      if (has_next)
        action = Action::next_endpoint;                    // the next address starts now, not at its turn
      else if (race_.in_flight() || lookup_.awaiting()) {  // the race goes on
        observe(remote(), error.local_endpoint(), &error, std::nullopt, {}, attempted);
        last_ = std::move(error);
        if (hook_failure_) return Next::done;  // the driver closes the racers
        return race_.in_flight() ? Next::race : Next::lookup_wait;
      }
    }
    if (action == Action::next_endpoint && !has_next) action = Action::retry;
    if (action != Action::rebind && action != Action::next_endpoint && race_.failure_count() > 1)
      error.with_detail("every address failed: " + race_.failures());
    delay_ = {};
    if (action == Action::retry) {
      if (auto d = schedule_.next_delay(error)) {
        delay_ = *d;
      } else {
        action = Action::give_up;
        error.with_gave_up(d.error()).with_detail(error.detail() + (error.detail().empty() ? "" : "; ") +
                                                  "gave up: " + std::string(to_string(d.error())));
      }
    }
    observe(remote(), error.local_endpoint(), &error, action, delay_, attempted);
    last_ = std::move(error);
    if (hook_failure_) return Next::done;  // no more attempts: the caller gets the hook's exception
    switch (action) {
      case Action::rebind: ++rebinds_; return Next::attempt;
      case Action::next_endpoint: current_ = racing_ ? race_.take_next() : current_ + 1; return Next::attempt;
      case Action::retry: return Next::wait;
      case Action::give_up: break;
    }
    return Next::done;
  }
  std::optional<Timer::duration> stagger() const noexcept {
    return race_.has_next(remotes_.size()) ? std::optional(options_->attempt_delay) : std::nullopt;
  }
  // The race is over and the driver has closed the other racers' sockets (with a reset).
  // The observer hears of each racer still in flight (`why`: "another address won the race"),
  // unless the core is going away (its destructor passes none: the driver itself is gone).
  void release_racers(const char* why = nullptr) noexcept {
    if constexpr (observed) {
      if (why && race_.in_flight()) {
        const NetError abandoned(Step::connect, LibraryError::cancelled, std::string("closed unfinished: ") + why);
        const Timer::time_point now = timer_or_system(options_->timer).now();
        for (const detail::Racer& r : race_.in_flight_now())
          tell(remotes_[r.address], r.plan.local, &abandoned, std::nullopt, {}, true, r.started, now, true);
      }
    }
    race_.release_all();
  }
  Next finish(NetError error) {
    last_ = std::move(error);
    return Next::done;
  }
  void observe(const Endpoint& remote, const std::optional<Endpoint>& local, const NetError* error,
               std::optional<Action> action, Timer::duration delay, bool attempted = true) {
    if constexpr (observed) {
      const Timer::time_point now = timer_or_system(options_->timer).now();
      tell(remote, local, error, action, delay, attempted, attempted ? started_ : now, now, false);
    }
  }
  // The observer's call: a throw is kept for rethrow_hook_failure(), after everything is given back.
  void tell(const Endpoint& remote, const std::optional<Endpoint>& local, const NetError* error,
            std::optional<Action> action, Timer::duration delay, bool attempted, Timer::time_point started,
            Timer::time_point now, bool abandoned) noexcept {
    try {
      notify(*observer_, remote, local, attempts_, error, action, delay, attempted, name_, started, now, abandoned);
    } catch (...) {
      if (!hook_failure_) hook_failure_ = std::current_exception();
    }
  }

  Bind* bind_;
  const Error* error_policy_;
  const ConnectorOptions* options_;
  Observer* observer_;
  std::span<const Endpoint> remotes_;
  const HostPort* name_ = nullptr;  // when connecting to a name
  std::vector<Endpoint> resolved_;  // its addresses, in the order tried
  Endpoint unresolved_{};           // remote() until then
  const NetError* problem_;
  schedule_type schedule_;
  std::optional<BindPlan> plan_;  // the attempt in flight
  CensusAsk census_;              // the bind policy's census question for the attempt being planned
  std::optional<NetError> last_;  // the latest failure
  AttemptTimeout timeout_{};
  detail::RaceBook race_;
  detail::LookupBook lookup_;
  bool race_enabled_ = false, racing_ = false;
  Timer::duration delay_{};
  std::size_t current_ = 0;  // index into remotes_
  int attempts_ = 0, rebinds_ = 0;
  bool succeeded_ = false;
  // The observer's times (none kept for NoObserver: the hot path reads no clock for it).
  static constexpr bool observed = !std::is_same_v<Observer, NoObserver>;
  Timer::time_point started_{};      // when the attempt in hand was planned
  std::exception_ptr hook_failure_;  // what a user hook (the observer, a census) threw, for the caller
};

// ---------------------------------------------------------------------------------------------
// A name's addresses: the lookup's answers, and the race that may begin before the second family
// has answered (RFC 8305).

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::resolved(std::span<const Endpoint> v6, std::span<const Endpoint> v4) {
  resolved_ = interleave_families(v6, v4);
  remotes_ = resolved_;
  current_ = 0;
  racing_ = can_race() && (resolved_.size() > 1 || lookup_.awaiting());
  race_.new_round();
  if (racing_) current_ = race_.take_next();
  if (resolved_.empty())
    return decide(
        NetError(Step::resolve, LibraryError::no_address, name_->to_string() + " has no IPv6 or IPv4 address"), false);
  return check_destinations();
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::resolved(const expected<std::vector<Endpoint>, NetError>& v6,
                                                         const expected<std::vector<Endpoint>, NetError>& v4) {
  const auto has_addresses = [](const expected<std::vector<Endpoint>, NetError>& a) { return a && !a->empty(); };
  if (!has_addresses(v6) && !has_addresses(v4)) return resolve_failed(detail::lookup_failure(*name_, v6, v4));
  using list = std::span<const Endpoint>;
  return resolved(v6 ? list(*v6) : list{}, v4 ? list(*v4) : list{});
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::lookup_answered(Family family,
                                                                expected<std::vector<Endpoint>, NetError> answer,
                                                                Timer::time_point now) {
  lookup_.put(family, std::move(answer));
  if (lookup_.began()) return join(family);
  if (lookup_.both_in()) return resolved(lookup_.answer(Family::ipv6), lookup_.answer(Family::ipv4));
  if (can_race() && lookup_.has_addresses(family)) {
    if (family == Family::ipv6) return begin(family);
    lookup_.wake_at(saturating_add(now, options_->resolution_delay));
  }
  return Next::lookup_wait;
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::lookup_woke(Timer::time_point now) {
  if (const auto wake = lookup_.wake_at(); wake != Timer::time_point::max()) {
    if (now < wake) return Next::lookup_wait;
    if (!lookup_.began() && lookup_.has_addresses(Family::ipv4)) return begin(Family::ipv4);
  }
  // Nothing came with no time set to wait for: the lookups broke their word (each family is
  // answered once, a silent one with a timeout). Never wait forever: the missing family failed.
  return lookup_answered(
      lookup_.missing().value_or(Family::ipv6),
      unexpected(NetError(Step::resolve, LibraryError::no_address, name_->to_string() + ": the lookup gave no answer")),
      now);
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::begin(Family family) {
  lookup_.begin();  // from now on, the other answer is awaited without a wake time
  lookup_.wake_at(Timer::time_point::max());
  const std::span<const Endpoint> none;
  return family == Family::ipv6 ? resolved(lookup_.addresses(family), none) : resolved(none, lookup_.addresses(family));
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::join(Family family) {
  if (lookup_.has_addresses(family)) {
    lookup_.join(family, resolved_, race_.next_index());
    remotes_ = resolved_;
  }
  if (race_.in_flight()) return Next::race;
  if (race_.has_next(remotes_.size())) {
    current_ = race_.take_next();
    return Next::attempt;
  }
  race_.forget_last_failure();       // decide() records it again
  return decide(std::move(*last_));  // the race ran dry: its last failure decides
}

// Both families' answers, come in together and in either order: to the core as resolved() takes
// them, IPv6's first. What each driver does when its lookups hand over two answers at once.
template <class Core>
Next resolved_together(Core& core, const FamilyAnswer& one, const FamilyAnswer& other) {
  const bool v6_first = one.family == Family::ipv6;
  return core.resolved(v6_first ? one.result : other.result, v6_first ? other.result : one.result);
}
}  // namespace connpolicy
