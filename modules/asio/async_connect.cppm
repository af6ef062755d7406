// async_connect: the Asio driver. It runs the same decision core as the blocking Connector
// (ConnectCore), with the Connector's own policies, options and observer, and waits the Asio way:
// the connect on the socket's reactor, the per-attempt timeout and every retry pause on
// asio::steady_timers. No thread ever blocks.
//
//   Client client{cp::FixedPortRotation{40000, 40009}, cp::ExponentialRetry{{.initial = 50ms}}};
//   auto socket = co_await cp::asio::async_connect(executor, client, remote, asio::use_awaitable);
//   if (!socket) log(socket.error().message());            // the same NetError as connect()
//   co_await asio::async_write(*socket, asio::buffer(request), asio::use_awaitable);
//
// It completes with expected<TcpSocket, NetError> (signature void(expected<...>)), through any
// completion token: use_awaitable, a callback, use_future, deferred. Cancelling it (Asio's
// per-operation cancellation, terminal; or the std::stop_token given to it) closes what is open
// and completes with LibraryError::cancelled. The connector must outlive the operation; the
// endpoints are copied.
module;
#include <asio.hpp>
#include <chrono>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <atomic>
#include <mutex>
#include <thread>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
export module connpolicy.asio:async_connect;
import connpolicy.core;
import connpolicy.bind;
import connpolicy.decision;
import :tcp_socket;
import :connect_state;
import :helper_thread;
import :round_lookups;
import :attempts;

namespace connpolicy::asio::detail {

// The driver: a composed operation that runs the core's command loop. It suspends only on its
// wake timer (a wait's limit, cancelled early by an attempt's outcome, a lookup's answer, the
// census's answer or a stop) and, to complete, on a post().
template <class Connector, class Resolver = SystemResolver>
class ConnectOp {
  using core_type = ConnectCore<typename Connector::bind_policy_type, typename Connector::retry_policy_type,
                                typename Connector::error_policy_type, typename Connector::observer_type>;
  using state_type = State<core_type>;
  using steady = std::chrono::steady_clock;
  enum class Suspended : unsigned char { no, census, wait, connect, finishing };

 public:
  template <class Executor>
  ConnectOp(const Executor& ex, Connector& connector, std::span<const Endpoint> remotes, std::stop_token stop)
      : connector_(&connector), state_(std::make_shared<state_type>(ex, remotes)), stop_(std::move(stop)) {}
  template <class Executor>
  ConnectOp(const Executor& ex, Connector& connector, const HostPort& name, std::stop_token stop,
            std::shared_ptr<Resolver> resolver = nullptr)
      : connector_(&connector), state_(std::make_shared<state_type>(ex, name)), stop_(std::move(stop)),
        resolver_(std::move(resolver)) {}

  // Started, or resumed by post() to complete.
  template <class Self>
  void operator()(Self& self) {
    if (suspended_ == Suspended::finishing) {
      rethrow_hook_failure();  // see finish()
      return self.complete(std::move(*state_->result));
    }
    auto& s = *state_;
    const NetError* problem = connector_->configuration_error() ? &*connector_->configuration_error() : nullptr;
    if (s.name)
      s.core.emplace(connector_->bind_policy(), connector_->retry_policy(), connector_->error_policy(),
                     connector_->options(), connector_->observer(), *s.name, problem);
    else
      s.core.emplace(connector_->bind_policy(), connector_->retry_policy(), connector_->error_policy(),
                     connector_->options(), connector_->observer(), std::span<const Endpoint>(s.remotes), problem);
    s.core->enable_race();
    if (stop_.stop_possible()) s.on_stop.emplace(stop_, StopCancels<state_type>{state_.get()});
    run(self);
  }
  // The wake timer: its limit passed, or news (or a stop) cancelled it. Or a lone attempt's
  // connect ended.
  template <class Self>
  void operator()(Self& self, std::error_code ec) {
    resumed_ = true;
    const Suspended was = std::exchange(suspended_, Suspended::no);
    if (was == Suspended::connect)
      lone_connect_ended(self, ec);
    else if (was == Suspended::census ? !census_or_arm(self) : !event_or_arm(self))
      return;  // waits on
    run(self);
  }

 private:
  template <class Self>
  bool cancelled(Self& self) {
    return state_->stopped.load(std::memory_order_acquire) ||
           self.get_cancellation_state().cancelled() != ::asio::cancellation_type::none;
  }

  template <class Self>
  void run(Self& self) {
    auto& s = *state_;
    core_type& core = *s.core;
    for (;;) {  // ends: the core bounds rebinds, endpoints, racers and rounds; a wait suspends
      if (!stop_told_ && cancelled(self)) [[unlikely]] {
        stop_told_ = true;
        core.handle(Stopped{s.stopped.load(std::memory_order_acquire) ? "the std::stop_token"
                                                                      : "the operation's cancellation slot"});
      }
      const Command command = core.poll();
      switch (command.kind) {
        case Command::Kind::look_up: start_lookups(command.lookup_limit); break;
        case Command::Kind::ask_census:
          start_census();
          if (!census_or_arm(self)) return;
          break;
        case Command::Kind::open: open(command); break;
        case Command::Kind::close: {
          std::lock_guard lock(s.mutex);
          close_attempt(s, command.id);
          break;
        }
        case Command::Kind::wait:
          if (wait_on_lone_connect(self, command)) return;
          expiry_ = steady::now() + std::min<Timer::duration>(command.limit, longest_timer);
          answers_due_ = command.answers_due;
          {
            std::lock_guard lock(s.mutex);
            s.attempts.for_each([&](AttemptId id, Attempt& a) {
              if (!a.started) start_connect(state_, id, a);
            });
          }
          if (!event_or_arm(self)) return;
          break;
        case Command::Kind::done: return finish(self, command);
      }
    }
  }

  // Socket, options and bind through the connector's system API, then Asio's connect (the same
  // connect() and SO_ERROR as the blocking driver's, and the wait each platform needs: a refused
  // connect shows only in select()'s error set on Windows).
  void open(const Command& command) {
    auto& s = *state_;
    core_type& core = *s.core;
    auto& system = connector_->system();
    const Endpoint& remote = *command.remote;
    const AttemptId id = command.id;
    auto handle = system.open_socket(remote.family(), /*nonblocking=*/true);
    if (!handle) return core.handle(Failed{id, Step::socket, handle.error()});
    // Made in its place among the attempts (an asio socket costs a service call per move): the
    // lock is taken only when the connect starts, as nothing else touches an attempt before.
    Attempt& attempt = [&]() -> Attempt& {
      std::lock_guard lock(s.mutex);
      return s.attempts.add(id, s.wake.get_executor(), remote);
    }();
    const auto fail = [&](Step step, std::error_code e, std::string detail = {}) {
      {
        std::lock_guard lock(s.mutex);
        close_attempt(s, id);  // first, so a port that goes back to its rotation is really free
      }
      core.handle(Failed{id, step, e, std::move(detail)});
    };
    std::error_code ec;
    attempt.socket.assign(remote.is_v4() ? ::asio::ip::tcp::v4() : ::asio::ip::tcp::v6(), *handle, ec);
    if (ec) {
      (void)system.close(*handle);
      return fail(Step::socket, from_asio(ec), "asio could not take the socket");
    }
    for (const OptionRequest& o : command.plan->option_list())
      if (auto e = system.set_option(*handle, o.option, o.value); e && o.required)
        return fail(Step::set_option, e, std::string(to_string(o.option)));
    if (command.plan->local)
      if (auto e = system.bind(*handle, *command.plan->local)) return fail(Step::bind, e);
    // The connect starts at the wait that follows: on the operation itself for a lone attempt.
  }

  // A lone attempt (no race, no lookup out: the wait's limit is its timeout) is waited on
  // directly: its connect's completion resumes the operation, with the wake timer beside it as
  // the timeout (P7: one scheduler turn a connect, not two). False: not this case.
  template <class Self>
  bool wait_on_lone_connect(Self& self, const Command& command) {
    auto& s = *state_;
    if (command.until != Timer::time_point::max() || command.answers_due || s.attempts.size() != 1) return false;
    auto* lone = s.attempts.find_if([](const Attempt& a) { return !a.started; });
    if (!lone) return false;
    std::lock_guard lock(s.mutex);
    if (s.stopped || cancelled(self)) return false;  // run() says Stopped; the core closes it
    lone->value.started = true;
    lone_ = lone->id;
    const unsigned generation = ++s.generation;
    s.timed_out = false;
    // Armed even for "no limit": a stop cancels this timer, and its handler ends the connect.
    s.wake.expires_after(std::min<Timer::duration>(command.limit, longest_timer));
    s.wake.async_wait([state = state_, generation, id = lone->id](std::error_code e) {
      std::lock_guard timer_lock(state->mutex);
      if (state->generation != generation || (e && !state->stopped)) return;  // stale, or put away
      state->timed_out = !e;
      if (Attempt* a = state->attempts.find(id)) {
        std::error_code ignored;
        a->socket.cancel(ignored);  // the connect ends: the operation resumes and asks why
      }
    });
    suspended_ = Suspended::connect;
    lone->value.socket.async_connect(to_asio(lone->value.remote), std::move(self));
    return true;
  }
  // The lone attempt's connect ended: its outcome, its timeout, or a stop (run() says it).
  template <class Self>
  void lone_connect_ended(Self& self, std::error_code ec) {
    auto& s = *state_;
    bool timed_out = false;
    {
      std::lock_guard lock(s.mutex);
      ++s.generation;  // the timer's handler, if still queued, does nothing now
      s.wake.cancel();
      timed_out = s.timed_out;
    }
    if (cancelled(self)) return;  // the core closes it, with a reset
    core_type& core = *s.core;
    if (timed_out) return core.handle(Woke{});  // the core closes it, with a reset
    if (ec) {
      {
        std::lock_guard lock(s.mutex);
        close_attempt(s, lone_);  // first, so a port that goes back to its rotation is really free
      }
      return core.handle(Failed{lone_, Step::connect, from_asio(ec)});
    }
    core.handle(Connected{lone_});
  }

  // Command::Kind::wait: what came (an attempt's outcome, an answer when one is due), or the
  // limit's end, told to the core (true); else the wake timer armed under the lock, so news that
  // comes meanwhile cancels that very wait (false). A stop: true, and run() says it.
  template <class Self>
  bool event_or_arm(Self& self) {
    auto& s = *state_;
    core_type& core = *s.core;
    std::unique_lock lock(s.mutex);
    if (s.stopped || cancelled(self)) return true;
    auto* done = s.attempts.find_if([](const Attempt& a) { return a.finished; });
    if (done && done->value.ec) {
      const AttemptId id = done->id;
      const std::error_code ec = done->value.ec;
      close_attempt(s, id);
      lock.unlock();  // the core tells the bind policy and the observer: user code
      core.handle(Failed{id, Step::connect, from_asio(ec)});
      return true;
    }
    if (done) {
      done->value.finished = false;  // told once
      const AttemptId id = done->id;
      lock.unlock();
      core.handle(Connected{id});
      return true;
    }
    if (answers_due_ && s.lookups) {
      if (std::exception_ptr thrown = s.lookups->take_thrown()) {  // ends the connect, as in connect()
        if (!s.resolver_thrown) s.resolver_thrown = std::move(thrown);
        lock.unlock();
        core.handle(Stopped{"the resolver's exception"});
        return true;
      }
      if (auto answer = take_answers(s, clock().now())) {
        lock.unlock();
        core.handle(std::move(*answer));
        return true;
      }
    }
    const auto now = steady::now();
    if (now >= expiry_) {
      lock.unlock();
      core.handle(Woke{});
      return true;
    }
    auto until = expiry_;
    if (answers_due_ && s.lookups) {  // a family silent past its limit is answered with a timeout
      const Timer::time_point lookup_now = clock().now();
      const auto left = s.lookup_deadline > lookup_now ? s.lookup_deadline - lookup_now : Timer::duration::zero();
      until = std::min(until, now + std::chrono::duration_cast<steady::duration>(left));
    }
    suspended_ = Suspended::wait;
    s.wake.expires_at(until);
    s.wake.async_wait(std::move(self));
    return false;
  }

  // The bind policy's census question, asked on the helper thread (never this one: it may take
  // milliseconds); the answer wakes the operation through its link, which outlives it.
  void start_census() {
    auto& s = *state_;
    {
      std::lock_guard lock(s.mutex);
      s.census_done = false;
      s.census_thrown = nullptr;
    }
    HelperThreads::instance().run([question = s.core->census_question(), link = s.link] {
      std::exception_ptr thrown;
      try {
        question->answer();
      } catch (...) {
        thrown = std::current_exception();
      }
      link->census_answered(std::move(thrown));
    });
  }
  // The census's answer, told to the core (true), or a wait for it (false). A stop: true.
  template <class Self>
  bool census_or_arm(Self& self) {
    auto& s = *state_;
    std::unique_lock lock(s.mutex);
    if (s.census_done) {
      std::exception_ptr thrown = std::exchange(s.census_thrown, nullptr);
      lock.unlock();
      s.core->handle(CensusAnswered{std::move(thrown)});
      return true;
    }
    if (s.stopped || cancelled(self)) return true;
    suspended_ = Suspended::census;
    s.wake.expires_after(longest_timer);
    s.wake.async_wait(std::move(self));
    return false;
  }

  Timer& clock() const { return timer_or_system(connector_->options().timer); }

  // A round of lookups of the name, each family bounded by `limit`; an answer cancels the wake
  // timer (through the state's link, which outlives the operation).
  void start_lookups(std::chrono::milliseconds limit) {
    auto& s = *state_;
    const Timer::time_point deadline = saturating_add(clock().now(), limit);
    std::unique_ptr<RoundLookups> round =
        start_round(resolver_, *s.name, limit, deadline, [link = s.link] { (*link)(); });
    std::unique_ptr<RoundLookups> older;  // an older round's lookups end on their own, after the lock
    std::lock_guard lock(s.mutex);
    s.lookup_deadline = deadline;
    older = std::exchange(s.lookups, std::move(round));
  }
  // The answers not told to the core yet, if any: one, or both when both are in. Call with the
  // state's mutex held.
  static std::optional<Answered> take_answers(state_type& s, Timer::time_point now) {
    std::optional<FamilyAnswer> answer = s.lookups->next(now);
    if (!answer) return std::nullopt;
    return Answered{std::move(*answer), s.lookups->next(now)};
  }
  // A user hook's throw (the observer's, the census's: the core keeps it) or the resolver's goes
  // out as the operation ends, once everything is put away.
  void rethrow_hook_failure() {
    state_->core->rethrow_hook_failure();
    if (std::exception_ptr thrown = std::exchange(state_->resolver_thrown, nullptr)) std::rethrow_exception(thrown);
  }

  template <class Self>
  void finish(Self& self, const Command& done) {
    auto& s = *state_;
    s.on_stop.reset();  // waits for a callback running on another thread
    {
      std::lock_guard lock(s.mutex);
      if (done.won) {
        // The ticket asks for the local address only at a normal close (TcpSocket::close), as a
        // blocking Socket does: a reset close needs none (P7: one getsockname a connection less).
        Attempt* winner = s.attempts.find(done.id);
        s.result.emplace(TcpSocket(std::move(winner->socket), LeaseTicket(s.core->take_lease())));
        s.attempts.erase(done.id);
      }
      close_attempts(s);  // none: the core closed every other
    }
    if (!done.won) s.result.emplace(unexpected(s.core->take_error()));
    // An observer that threw: its exception leaves io_context::run() (Asio's way for a handler's
    // throw) once the result, socket and lease included, is put away; the handler is not called.
    // Never from inside the initiating call: it is thrown from the posted step then.
    if (resumed_) {
      rethrow_hook_failure();
      return self.complete(std::move(*s.result));
    }
    suspended_ = Suspended::finishing;  // never complete inside the initiating call
    ::asio::post(std::move(self));
  }

  Connector* connector_;
  std::shared_ptr<state_type> state_;
  std::stop_token stop_;
  std::shared_ptr<Resolver> resolver_;  // a custom one (shared with its lookups' helper threads)
  steady::time_point expiry_{};         // the core's wait ends here
  Suspended suspended_ = Suspended::no;
  AttemptId lone_ = 0;  // the attempt waited on directly (Suspended::connect)
  bool resumed_ = false, stop_told_ = false, answers_due_ = false;
};

}  // namespace connpolicy::asio::detail
