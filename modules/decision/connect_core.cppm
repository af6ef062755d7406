// ConnectCore: every decision of a connect, and no I/O. It never makes a syscall and never
// waits: asked, it says what to do next (poll(): a Command), and it is told what happened
// (handle(): one of six events). The protocol is closed and written once, in
// connpolicy.decision:protocol (protocol.cppm); the blocking Connector and the Asio driver are
// loops over it, so a policy, the race, the lookups, a stop and the success tail behave the same
// under either.
//
// It owns what it lends: every attempt's port lease stays with it until the attempt's socket is
// closed (the driver closes before it reports a failure; the core's own closes, of a timed-out,
// stopped or beaten attempt, are commands, and their leases go back at the next poll(), once the
// driver has closed) or handed to the winner (take_lease()). Destroyed mid-operation (a driver
// torn down), it gives back everything it still holds, as closed with a reset: the driver closes
// its sockets that way first.
//
// Use when: you write a driver of your own (another event loop, io_uring): docs/driver.md. Drive
// it from one thread at a time; the policies it asks are shared and thread-safe.
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
import :rare_list;
import :race_book;
import :lookup_book;
import :protocol;

export namespace connpolicy {

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer = NoObserver>
class ConnectCore {
  // Where the connect stands: what the next poll() says, and what an event means.
  enum class Phase : std::uint8_t {
    start,        // nothing asked yet
    resolve,      // the name's lookups are to be started
    lookup_wait,  // the lookups are out: an answer, or the resolution delay's end
    attempt,      // the next attempt is to be planned
    census,       // the bind policy's census is to be asked
    census_out,   // asked: its answer is awaited
    connect,      // planned: to be opened
    race,         // attempts in flight: an outcome, a timeout, the next address's turn
    wait,         // the retry schedule's pause is to be waited
    pausing,      // and is being waited
    done,
  };

 public:
  using schedule_type = typename Retry::schedule_type;

  // Holds references: the policies, options, observer, endpoints and `problem` (a configuration
  // error found earlier, which every connect ends with; or null) outlive the core.
  ConnectCore(Bind& bind, const Retry& retry, const Error& error, const ConnectorOptions& options, Observer& observer,
              std::span<const Endpoint> remotes, const NetError* problem = nullptr)
      : bind_(&bind), error_policy_(&error), options_(&options), observer_(&observer), remotes_(remotes),
        problem_(problem), schedule_(retry.schedule(timer_or_system(options.timer))) {}
  // To a name: its addresses are looked up first, and again before each retry round, since a
  // name's addresses may change while a server is down.
  ConnectCore(Bind& bind, const Retry& retry, const Error& error, const ConnectorOptions& options, Observer& observer,
              const HostPort& name, const NetError* problem = nullptr)
      : ConnectCore(bind, retry, error, options, observer, std::span<const Endpoint>{}, problem) {
    name_ = &name;
    unresolved_ = Endpoint::any_v4(name.port());
    if (name.numeric()) resolved_.push_back(*name.numeric());
    remotes_ = resolved_;
  }

  // A driver torn down mid-operation (an exception, an io_context destroyed with the operation
  // pending) has closed its sockets with a reset: every lease still here goes back as never used.
  ~ConnectCore() {
    if (!closing_.empty()) [[unlikely]] {
      release_closed();
      for (Closing& c : closing_)  // close commands never given: the driver closed with a reset
        if (c.plan.lease) c.plan.lease->on_close(CloseKind::reset);
    }
    if (race_.in_flight()) [[unlikely]]
      race_.release_all();
    if (plan_ && plan_->lease) plan_->lease->on_close(CloseKind::reset);
    if (lease_) lease_->on_close(CloseKind::reset);
  }
  ConnectCore(const ConnectCore&) = delete;
  ConnectCore& operator=(const ConnectCore&) = delete;

  // A driver that can wait for several sockets at once enables the race (Happy Eyeballs,
  // RFC 8305) before its first poll(); without it, one attempt at a time.
  void enable_race() noexcept { race_enabled_ = true; }

  // What to do next (protocol.cppm says what each command asks and what may be reported).
  [[gnu::always_inline]] Command poll() {
    if (!closing_.empty()) [[unlikely]] {
      release_closed();
      if (!closing_.empty()) return Command{.kind = Command::Kind::close, .id = closing_[given_++].id};
    }
    for (;;) {
      switch (phase_) {
        case Phase::start: enter(start()); break;
        case Phase::resolve:
          if (stopped_) {
            enter(lookup_stopped());
            break;
          }
          phase_ = Phase::lookup_wait;
          return Command{.kind = Command::Kind::look_up, .lookup_limit = resolve_timeout()};
        case Phase::lookup_wait: return wait_until(lookup_.wake_at(), true);
        case Phase::attempt: enter(prepare()); break;
        case Phase::census: phase_ = Phase::census_out; [[fallthrough]];
        case Phase::census_out: return Command{.kind = Command::Kind::ask_census};
        case Phase::connect: return open();
        case Phase::race:
          if (lone_) return Command{.kind = Command::Kind::wait, .limit = saturating_duration(timeout_.limit)};
          return wait_until(race_.wake_at(stagger()), lookup_.awaiting());
        case Phase::wait:
          if (stopped_) {
            enter(waited(false));
            break;
          }
          phase_ = Phase::pausing;
          [[fallthrough]];
        case Phase::pausing: return Command{.kind = Command::Kind::wait, .limit = delay_};
        case Phase::done: return Command{.kind = Command::Kind::done, .id = winner_, .won = succeeded_};
      }
    }
  }

  // --- Events.
  // A lookup's answers (a numeric name needs none): the race may begin before the second
  // family's, with IPv6's at once, with IPv4's at the resolution delay's end.
  void handle(Answered a) {
    if (phase_ != Phase::lookup_wait && !(phase_ == Phase::race && lookup_.awaiting())) return;  // too late
    if (a.second) return enter(resolved_together(a.first, *a.second));
    enter(lookup_answered(a.first.family, std::move(a.first.result), clock().now()));
  }
  [[gnu::always_inline]] void handle(Connected c) {
    if (!answered(c.id)) [[unlikely]]
      return;
    lease_ = connected();
    winner_ = c.id;
    enter(Phase::done);  // the other racers are closed: "another address won the race"
  }
  void handle(Failed f) {
    if (!answered(f.id)) return;
    enter(failed(f.step, f.code, std::move(f.detail)));
  }
  // The wait's whole limit passed: an attempt overdue, the next address's turn, the resolution
  // delay's end, or the retry pause's.
  void handle(Woke) {
    switch (phase_) {
      case Phase::lookup_wait: return enter(lookup_woke(woken_at()));
      case Phase::race:
        if (lone_) {
          answered(lone_id_);
          return enter(timed_out());
        }
        {
          const Timer::time_point now = woken_at();
          if (auto id = race_.overdue(now)) {
            answered(*id);
            return enter(timed_out());
          }
          return enter(woke(now));
        }
      case Phase::pausing: return enter(waited(true));
      default: return;
    }
  }
  // The one way a stop is said: whatever is in flight is closed (with a reset: a connect that
  // completed as the stop came leaves no TIME_WAIT on a port the rotation takes back as unused).
  void handle(Stopped stop) {
    if (!stopped_) stopped_by_ = stop.by;
    stopped_ = true;
    switch (phase_) {
      case Phase::lookup_wait: return enter(lookup_stopped());
      case Phase::census_out: census_ = {}; return enter(cancelled_before_attempt());
      case Phase::race:
        if (lone_) {
          answered(lone_id_);
          return enter(failed(Step::wait, make_error_code(LibraryError::cancelled), stopped_detail(),
                              /*core_closes=*/true));
        }
        return enter(finish(NetError(Step::wait, LibraryError::cancelled, stopped_detail())
                                .with_remote(remote())
                                .with_attempts(attempts_)));
      case Phase::pausing: return enter(waited(false));
      default: return;  // the next poll() sees it
    }
  }
  void handle(CensusAnswered c) {
    if (phase_ != Phase::census_out) return;
    if (c.thrown) return enter(census_failed(std::move(c.thrown)));
    census_.answered = true;
    phase_ = Phase::attempt;
  }

  // --- What commands refer to.
  // look_up: the name.
  const HostPort& name() const noexcept { return *name_; }
  // ask_census: the bind policy's question (FixedPortRotation's census), shared so a helper
  // thread may keep it while it answers.
  std::shared_ptr<CensusQuestion> census_question() const noexcept { return census_.question; }
  // done, won: the winner's port lease, for its socket to hold and tell how it closed.
  std::shared_ptr<PortLease> take_lease() noexcept { return std::move(lease_); }
  // done, lost: why.
  NetError take_error() { return std::move(*last_); }
  // After done, once the driver has put everything away (the socket holding its lease): a user
  // hook (the observer, a census) that threw ended the operation at once, and its exception goes
  // to the caller now.
  void rethrow_hook_failure() {
    if (auto failure = std::exchange(hook_failure_, nullptr)) std::rethrow_exception(failure);
  }
  int attempts() const noexcept { return attempts_; }

 private:
  // An attempt the core closes (its timeout, a stop, another racer's win): its lease goes back at
  // the poll() after the close command, with the failure it ended with (none: never answered).
  struct Closing {
    AttemptId id;
    BindPlan plan;
    std::optional<NetError> failure;
  };
  void release_closed() noexcept {
    for (std::size_t i = 0; i < given_; ++i) {
      Closing& c = closing_[i];
      if (c.failure)
        bind_->failed(c.plan, *c.failure);
      else if (c.plan.lease)
        c.plan.lease->on_close(CloseKind::reset);
    }
    closing_.erase_first(std::exchange(given_, 0));
  }
  // Every phase change goes through here: at the end, what is still in flight is closed.
  void enter(Phase next) {
    phase_ = next;
    if (next == Phase::done && race_.in_flight()) [[unlikely]]
      abandon_racers(succeeded_ ? "another address won the race" : "the connect ended with it in flight");
  }
  // The racers still in flight are closed unfinished: the observer hears of each, and their
  // close commands come first.
  void abandon_racers(const char* why) {
    if constexpr (observed) {
      const NetError abandoned(Step::connect, LibraryError::cancelled, std::string("closed unfinished: ") + why);
      const Timer::time_point now = clock().now();
      for (const detail::Racer& r : race_.in_flight_now())
        tell(remotes_[r.address], r.plan.local, &abandoned, std::nullopt, {}, true, r.started, now, true);
    }
    for (detail::Racer& r : race_.take_all()) closing_.emplace_back(Closing{r.id, std::move(r.plan), std::nullopt});
  }
  Timer& clock() const noexcept { return timer_or_system(options_->timer); }
  // A wait until `until` on the connector's clock; woken, the core takes that time as passed.
  Command wait_until(Timer::time_point until, bool answers_due) {
    const Timer::time_point now = clock().now();
    waiting_until_ = until;
    const Timer::duration limit = until > now ? saturating_sub(until, now) : Timer::duration::zero();
    return Command{.kind = Command::Kind::wait, .limit = limit, .until = until, .answers_due = answers_due};
  }
  Timer::time_point woken_at() const { return std::max(clock().now(), waiting_until_); }
  static Timer::duration saturating_sub(Timer::time_point a, Timer::time_point b) noexcept {
    if (a == Timer::time_point::max()) return Timer::duration::max();
    return a - b;
  }
  // The attempt planned: in a race it joins the racers; else it is the lone attempt in flight.
  [[gnu::always_inline]] Command open() {
    phase_ = Phase::race;
    if (racing_) [[unlikely]] {
      const AttemptId id =
          race_.launch(current_, std::move(*std::exchange(plan_, std::nullopt)), timeout_, clock().now(), started_);
      const detail::Racer& r = race_.last();
      return Command{.kind = Command::Kind::open, .id = id, .remote = &remotes_[r.address], .plan = &r.plan};
    }
    lone_ = true;
    lone_id_ = race_.new_id();
    return Command{.kind = Command::Kind::open, .id = lone_id_, .remote = &remote(), .plan = &*plan_};
  }
  // Attempt `id` answered: the reports that follow speak of it. False when it is not in flight
  // (a driver's late word on an attempt the core has closed).
  [[gnu::always_inline]] bool answered(AttemptId id) {
    answered_id_ = id;
    if (lone_ && id == lone_id_) [[likely]] {
      lone_ = false;
      return true;
    }
    std::optional<detail::Racer> r = race_.take(id);
    if (!r) return false;
    std::tie(current_, plan_, timeout_, started_) = std::tuple(r->address, std::move(r->plan), r->timeout, r->started);
    return true;
  }

  // Refuses what no attempt could fix (bad configuration, no endpoint, a destination TCP cannot
  // use) before any syscall; otherwise the first attempt.
  [[gnu::always_inline]] Phase start() {
    if (problem_) [[unlikely]]
      return finish(NetError(*problem_));
    if (name_ && remotes_.empty()) return Phase::resolve;
    return check_destinations();
  }
  // How long a lookup may take: the per-attempt timeout, or what is left until the retry
  // deadline when that is sooner.
  std::chrono::milliseconds resolve_timeout() const noexcept {
    return std::max(attempt_limit(options_->connect_timeout, schedule_.time_left()).limit,
                    std::chrono::milliseconds(1));
  }
  // The name's addresses, per family (either may be empty): IPv6 first, then alternating
  // families (RFC 8305, section 4), each family in the resolver's order.
  Phase resolved(std::span<const Endpoint> v6, std::span<const Endpoint> v4);
  // Each family's answer: a failure decides only when the other has no address (IPv4's if both).
  Phase resolved(const expected<std::vector<Endpoint>, NetError>& v6,
                 const expected<std::vector<Endpoint>, NetError>& v4);
  Phase resolved_together(const FamilyAnswer& one, const FamilyAnswer& other) {
    const bool v6_first = one.family == Family::ipv6;
    return resolved(v6_first ? one.result : other.result, v6_first ? other.result : one.result);
  }
  Phase lookup_answered(Family family, expected<std::vector<Endpoint>, NetError> answer, Timer::time_point now);
  Phase lookup_woke(Timer::time_point now);
  Phase lookup_stopped() {
    return finish(NetError(Step::resolve, LibraryError::cancelled)
                      .with_detail(name_->to_string() + ": " + stopped_detail())
                      .with_attempts(attempts_));
  }
  // What stopped the connect, for its error ("stopped by the std::stop_token").
  std::string stopped_detail() const { return std::string("stopped by ") + stopped_by_; }
  bool can_race() const noexcept { return race_enabled_ && options_->attempt_delay.count() > 0; }
  Phase begin(Family family);  // the race, with one family's addresses
  Phase join(Family family);   // the other's, come late
  [[gnu::always_inline]] Phase check_destinations() {
    if (!destinations_usable(remotes_)) [[unlikely]]
      return finish(std::move(*destinations_problem(remotes_)));
    return Phase::attempt;
  }
  Phase cancelled_before_attempt() {
    return finish(NetError(Step::connect, LibraryError::cancelled, stopped_detail())
                      .with_remote(remote())
                      .with_attempts(attempts_));
  }

  // Plans the next attempt: Phase::connect when there is one to make (it counts as an attempt
  // from here: syscalls follow), or whatever the failure to plan leads to.
  [[gnu::always_inline]] Phase prepare() {
    if (stopped_) [[unlikely]]
      return cancelled_before_attempt();
    const Endpoint& to = remote();
    auto plan = plan_for(to);
    if constexpr (AsksCensus<Bind>) {
      if (census_.question && !census_.answered) [[unlikely]]
        return Phase::census;
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
    if constexpr (observed) started_ = clock().now();
    return Phase::connect;
  }
  Phase census_failed(std::exception_ptr thrown) {
    census_ = {};
    if (!hook_failure_) hook_failure_ = std::move(thrown);
    return finish(NetError(Step::bind, LibraryError::cancelled, "the census threw")
                      .with_remote(remote())
                      .with_attempts(attempts_));
  }

  // Before a name is resolved: the unspecified address, with the name's port.
  const Endpoint& remote() const noexcept { return remotes_.empty() ? unresolved_ : remotes_[current_]; }

  // The attempt in hand connected: its lease, for the socket.
  [[gnu::always_inline]] std::shared_ptr<PortLease> connected() {
    observe(remote(), plan_->local, nullptr, std::nullopt, {});
    succeeded_ = true;
    report_success(schedule_);  // a budgeted schedule refills its budget
    std::shared_ptr<PortLease> lease = std::move(plan_->lease);
    plan_.reset();
    return lease;
  }
  // The attempt in hand failed at `step`. The driver has closed its socket, so its port goes back
  // now; or the core closes it (`core_closes`: a timeout, a stop), and it goes back after.
  Phase failed(Step step, std::error_code ec, std::string detail = {}, bool core_closes = false) {
    NetError error(step, ec);
    error.with_remote(remote()).with_detail(std::move(detail));
    if (plan_->local) error.with_local(*plan_->local);
    if (core_closes)
      closing_.emplace_back(Closing{answered_id_, std::move(*plan_), error});
    else
      bind_->failed(*plan_, error);
    plan_.reset();
    return decide(std::move(error));
  }
  // The attempt's wait ran out: its limit passed without an answer. The core closes it.
  Phase timed_out() {
    if (timeout_.deadline_bound) return failed(Step::wait, make_error_code(LibraryError::deadline_exceeded), {}, true);
    return failed(Step::wait, make_system_error(ETIMEDOUT),
                  "no answer within " + std::to_string(options_->connect_timeout.count()) + " ms", true);
  }

  // Nothing answered by the race's wake time: the next address's turn has come, or wait on.
  Phase woke(Timer::time_point now) {
    if (auto s = stagger(); s && (!race_.in_flight() || now >= saturating_add(race_.last_start(), *s))) {
      current_ = race_.take_next();
      return Phase::attempt;
    }
    return Phase::race;
  }
  Phase waited(bool completed) {
    if (!completed)
      return finish(NetError(Step::wait, LibraryError::cancelled)
                        .with_remote(remote())
                        .with_attempts(attempts_)
                        .with_detail(stopped_detail() + " while waiting to retry after: " + last_->message()));
    current_ = 0;
    rebinds_ = 0;
    race_.new_round();
    racing_ = false;  // until resolved() says again
    lookup_.reset();
    if (name_ && !name_->numeric()) {
      remotes_ = {};
      return Phase::resolve;
    }
    return Phase::attempt;
  }

  expected<BindPlan, NetError> plan_for(const Endpoint& to) {
    if constexpr (AsksCensus<Bind>)
      return bind_->plan(to, census_);
    else
      return bind_->plan(to);
  }
  // The error policy's word on a failure, and the retry schedule's when it says retry.
  Phase decide(NetError error, bool attempted = true);
  std::optional<Timer::duration> stagger() const noexcept {
    return race_.has_next(remotes_.size()) ? std::optional(options_->attempt_delay) : std::nullopt;
  }
  Phase finish(NetError error) {
    last_ = std::move(error);
    return Phase::done;
  }
  void observe(const Endpoint& remote, const std::optional<Endpoint>& local, const NetError* error,
               std::optional<Action> action, Timer::duration delay, bool attempted = true) {
    if constexpr (observed) {
      const Timer::time_point now = clock().now();
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
  Phase phase_ = Phase::start;
  std::optional<BindPlan> plan_;  // the attempt in hand: planned, in flight alone, or answered
  CensusAsk census_;              // the bind policy's census question for the attempt being planned
  std::optional<NetError> last_;  // the latest failure
  AttemptTimeout timeout_{};
  detail::RaceBook race_;
  detail::LookupBook lookup_;
  detail::RareList<Closing> closing_;  // attempts the core closes: the first given_ were given to the
  std::size_t given_ = 0;              // driver (closed: their leases go back), the rest are to give
  std::shared_ptr<PortLease> lease_;   // the winner's, until take_lease()
  Timer::time_point waiting_until_{};  // the wait given last (a race's, a lookup's)
  Timer::duration delay_{};
  std::size_t current_ = 0;  // index into remotes_
  AttemptId lone_id_ = 0, answered_id_ = 0, winner_ = 0;
  int attempts_ = 0, rebinds_ = 0;
  bool race_enabled_ = false, racing_ = false, lone_ = false, stopped_ = false, succeeded_ = false;
  const char* stopped_by_ = "";  // Stopped::by, the first said
  // The observer's times (none kept for NoObserver: the hot path reads no clock for it).
  static constexpr bool observed = !std::is_same_v<Observer, NoObserver>;
  Timer::time_point started_{};      // when the attempt in hand was planned
  std::exception_ptr hook_failure_;  // what a user hook (the observer, a census) threw, for the caller
};

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
auto ConnectCore<Bind, Retry, Error, Observer>::decide(NetError error, bool attempted) -> Phase {
  error.with_attempts(attempts_);
  const bool has_next = racing_ ? race_.has_next(remotes_.size()) : current_ + 1 < remotes_.size();
  const bool may_rebind = rebinds_ < options_->max_rebinds;
  Action action = error_policy_->classify(
      Failure{error, Bind::can_rebind && may_rebind, has_next, attempted && can_change_address<Bind>() && may_rebind});
  if (action != Action::rebind && (remotes_.size() > 1 || lookup_.awaiting())) race_.failed(error);  // address done
  if (racing_ && action != Action::rebind && action != Action::give_up) {
    if (has_next)
      action = Action::next_endpoint;                    // the next address starts now, not at its turn
    else if (race_.in_flight() || lookup_.awaiting()) {  // the race goes on
      observe(remote(), error.local_endpoint(), &error, std::nullopt, {}, attempted);
      last_ = std::move(error);
      if (hook_failure_) return Phase::done;  // the racers are closed
      return race_.in_flight() ? Phase::race : Phase::lookup_wait;
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
  if (hook_failure_) return Phase::done;  // no more attempts: the caller gets the hook's exception
  switch (action) {
    case Action::rebind: ++rebinds_; return Phase::attempt;
    case Action::next_endpoint: current_ = racing_ ? race_.take_next() : current_ + 1; return Phase::attempt;
    case Action::retry: return Phase::wait;
    case Action::give_up: break;
  }
  return Phase::done;
}

// ---------------------------------------------------------------------------------------------
// A name's addresses: the lookup's answers, and the race that may begin before the second family
// has answered (RFC 8305).

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
auto ConnectCore<Bind, Retry, Error, Observer>::resolved(std::span<const Endpoint> v6, std::span<const Endpoint> v4)
    -> Phase {
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
auto ConnectCore<Bind, Retry, Error, Observer>::resolved(const expected<std::vector<Endpoint>, NetError>& v6,
                                                         const expected<std::vector<Endpoint>, NetError>& v4) -> Phase {
  const auto has_addresses = [](const expected<std::vector<Endpoint>, NetError>& a) { return a && !a->empty(); };
  if (!has_addresses(v6) && !has_addresses(v4)) return decide(detail::lookup_failure(*name_, v6, v4), false);
  using list = std::span<const Endpoint>;
  return resolved(v6 ? list(*v6) : list{}, v4 ? list(*v4) : list{});
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
auto ConnectCore<Bind, Retry, Error, Observer>::lookup_answered(Family family,
                                                                expected<std::vector<Endpoint>, NetError> answer,
                                                                Timer::time_point now) -> Phase {
  lookup_.put(family, std::move(answer));
  if (lookup_.began()) return join(family);
  if (lookup_.both_in()) return resolved(lookup_.answer(Family::ipv6), lookup_.answer(Family::ipv4));
  if (can_race() && lookup_.has_addresses(family)) {
    if (family == Family::ipv6) return begin(family);
    lookup_.wake_at(saturating_add(now, options_->resolution_delay));
  }
  return Phase::lookup_wait;
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
auto ConnectCore<Bind, Retry, Error, Observer>::lookup_woke(Timer::time_point now) -> Phase {
  if (const auto wake = lookup_.wake_at(); wake != Timer::time_point::max()) {
    if (now < wake) return Phase::lookup_wait;
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
auto ConnectCore<Bind, Retry, Error, Observer>::begin(Family family) -> Phase {
  lookup_.begin();  // from now on, the other answer is awaited without a wake time
  lookup_.wake_at(Timer::time_point::max());
  const std::span<const Endpoint> none;
  return family == Family::ipv6 ? resolved(lookup_.addresses(family), none) : resolved(none, lookup_.addresses(family));
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
auto ConnectCore<Bind, Retry, Error, Observer>::join(Family family) -> Phase {
  if (lookup_.has_addresses(family)) {
    lookup_.join(family, resolved_, race_.next_index());
    remotes_ = resolved_;
  }
  if (race_.in_flight()) return Phase::race;
  if (race_.has_next(remotes_.size())) {
    current_ = race_.take_next();
    return Phase::attempt;
  }
  race_.forget_last_failure();       // decide() records it again
  return decide(std::move(*last_));  // the race ran dry: its last failure decides
}

}  // namespace connpolicy
