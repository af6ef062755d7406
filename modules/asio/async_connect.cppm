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
import :name_lookups;
import :racers;

namespace connpolicy::asio::detail {

template <class Connector>
class ConnectOp {
  using core_type = ConnectCore<typename Connector::bind_policy_type, typename Connector::retry_policy_type,
                                typename Connector::error_policy_type, typename Connector::observer_type>;
  using state_type = State<core_type>;
  enum class Phase : unsigned char { starting, resolving, census, connecting, racing, pausing, finishing };

 public:
  template <class Executor>
  ConnectOp(const Executor& ex, Connector& connector, std::span<const Endpoint> remotes, std::stop_token stop)
      : connector_(&connector), state_(std::make_shared<state_type>(ex, remotes)), stop_(std::move(stop)) {}
  template <class Executor>
  ConnectOp(const Executor& ex, Connector& connector, const HostPort& name, std::stop_token stop)
      : connector_(&connector), state_(std::make_shared<state_type>(ex, name)), stop_(std::move(stop)) {}

  // Started, or resumed by post() to complete.
  template <class Self>
  void operator()(Self& self) {
    if (phase_ == Phase::finishing) {
      state_->core->rethrow_hook_failure();  // see finish()
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
    run(self, s.core->start());
  }
  // Resumed: the connect wait or the retry pause ended.
  template <class Self>
  void operator()(Self& self, std::error_code ec) {
    suspended_ = true;
    switch (phase_) {
      case Phase::resolving: return run(self, Next::lookup_wait);
      case Phase::census:
        if (auto n = census_step(self)) return run(self, *n);
        return;  // woken early (a late lookup answer): the census is still being asked
      case Phase::racing: return run(self, Next::race);
      case Phase::connecting: return run(self, connect_ended(self, ec));
      default: return run(self, pause_ended(self, ec));
    }
  }

 private:
  template <class Self>
  bool cancelled(Self& self) {
    return state_->stopped.load(std::memory_order_acquire) ||
           self.get_cancellation_state().cancelled() != ::asio::cancellation_type::none;
  }

  template <class Self>
  void run(Self& self, Next next) {
    core_type& core = *state_->core;
    for (;;) {  // ends: the core bounds rebinds, endpoints and rounds; a wait suspends
      switch (next) {
        case Next::resolve: next = start_lookup(); break;
        case Next::lookup_wait:
          if (auto n = lookup_step(self)) {
            next = *n;
            break;
          }
          return;  // suspended on the wake timer
        case Next::attempt: next = core.prepare(cancelled(self)); break;
        case Next::census:
          if (auto n = start_census(self)) {
            next = *n;
            break;
          }
          return;  // suspended until the helper thread has answered
        case Next::connect:
          if (auto n = start_attempt(self)) {
            next = *n;
            break;
          }
          return;  // suspended: `self` has moved into the wait
        case Next::wait:
          if (cancelled(self)) {
            next = core.waited(false);
            break;
          }
          return pause(self, core.delay());
        case Next::race:
          if (auto n = late_answer(self)) {
            next = *n;
            break;
          }
          if (auto n = race_step(self)) {
            next = *n;
            break;
          }
          return;  // suspended on the wake timer
        case Next::done: return finish(self);
      }
    }
  }

  // Socket, options and bind through the connector's system API, then Asio's connect, with the
  // attempt's timer beside it. Empty when the connect has started.
  template <class Self>
  std::optional<Next> start_attempt(Self& self) {
    auto& s = *state_;
    core_type& core = *s.core;
    auto& system = connector_->system();
    const Endpoint& remote = core.remote();
    const BindPlan& plan = core.plan();
    auto handle = system.open_socket(remote.family(), /*nonblocking=*/true);
    if (!handle) return core.failed(Step::socket, handle.error());
    std::error_code ec;
    {
      std::lock_guard lock(s.mutex);
      s.socket.assign(remote.is_v4() ? ::asio::ip::tcp::v4() : ::asio::ip::tcp::v6(), *handle, ec);
    }
    if (ec) {
      (void)system.close(*handle);
      return core.failed(Step::socket, from_asio(ec), "asio could not take the socket");
    }
    for (const OptionRequest& o : plan.option_list())
      if (auto e = system.set_option(*handle, o.option, o.value); e && o.required)
        return fail(Step::set_option, e, std::string(to_string(o.option)));
    if (plan.local)
      if (auto e = system.bind(*handle, *plan.local)) return fail(Step::bind, e);
    if (core.racing()) {
      std::lock_guard lock(s.mutex);
      if (s.stopped) return fail(Step::wait, make_error_code(LibraryError::cancelled));
      launch_racer(state_, std::move(s.socket), remote, core.launched(clock().now()));
      return Next::race;
    }
    phase_ = Phase::connecting;
    {
      std::lock_guard lock(s.mutex);
      if (!s.stopped) {  // else a stop came between the checks: no connect
        const unsigned generation = ++s.generation;
        s.timed_out = false;
        if (const auto limit = core.attempt_timeout().limit; limit < longest_timer) {
          s.attempt_timer.expires_after(limit);
          s.attempt_timer.async_wait([state = state_, generation](std::error_code e) {
            if (e) return;
            std::lock_guard timer_lock(state->mutex);
            if (state->generation != generation) return;
            state->timed_out = true;
            std::error_code ignored;
            state->socket.cancel(ignored);
          });
        }
        // Asio's own connect: the same connect() and SO_ERROR as the blocking driver's, and the
        // wait each platform needs (a refused connect shows only in select()'s error set on Windows).
        s.socket.async_connect(to_asio(remote), std::move(self));
        return std::nullopt;
      }
    }
    return fail(Step::wait, make_error_code(LibraryError::cancelled));
  }

  // The bind policy's census question, asked on the helper thread (never this one: it may take
  // milliseconds); the answer wakes the operation through its link, which outlives it.
  template <class Self>
  std::optional<Next> start_census(Self& self) {
    auto& s = *state_;
    {
      std::lock_guard lock(s.mutex);
      s.census_done = false;
      s.census_thrown = nullptr;
    }
    HelperThread::instance().run([question = s.core->census_question_shared(), link = s.link] {
      std::exception_ptr thrown;
      try {
        question->answer();
      } catch (...) {
        thrown = std::current_exception();
      }
      link->census_answered(std::move(thrown));
    });
    return census_step(self);
  }
  // The answer, if it has come; else a wait on the wake timer, which the answer (or a stop) cancels.
  template <class Self>
  std::optional<Next> census_step(Self& self) {
    auto& s = *state_;
    std::unique_lock lock(s.mutex);
    if (s.census_done) {
      std::exception_ptr thrown = std::exchange(s.census_thrown, nullptr);
      lock.unlock();
      return thrown ? s.core->census_failed(std::move(thrown)) : s.core->census_answered();
    }
    if (cancelled(self)) {
      lock.unlock();
      return s.core->census_answered();  // prepare() sees the stop and ends the connect
    }
    phase_ = Phase::census;
    s.wake.expires_after(longest_timer);
    s.wake.async_wait(std::move(self));
    return std::nullopt;
  }

  // Both families at once (name_lookups.cppm), each within core.resolve_timeout().
  Next start_lookup() {
    std::lock_guard lock(state_->mutex);
    start_lookups(state_, clock().now(), state_->core->resolve_timeout());
    return Next::lookup_wait;
  }
  // Next::lookup_wait and, while racing, an answer that came in meanwhile (name_lookups.cppm).
  template <class Self>
  std::optional<Next> lookup_step(Self& self) {
    return lookup_report(*state_, *state_->core, clock().now(), cancelled(self), [&](Timer::duration d) {
      phase_ = Phase::resolving;
      state_->wake.expires_after(std::min<Timer::duration>(d, longest_timer));
      state_->wake.async_wait(std::move(self));
    });
  }
  template <class Self>
  std::optional<Next> late_answer(Self& self) {
    if (cancelled(self)) return std::nullopt;
    return detail::late_answer(*state_, *state_->core, clock().now());
  }

  template <class Self>
  Next connect_ended(Self& self, std::error_code ec) {
    auto& s = *state_;
    core_type& core = *s.core;
    bool timed_out = false;
    {
      std::lock_guard lock(s.mutex);
      ++s.generation;  // the attempt timer's handler, if still queued, does nothing now
      s.attempt_timer.cancel();
      timed_out = s.timed_out;
    }
    // A cancel or a timeout may come as the handshake completes: the socket is closed with a
    // reset then, so no TIME_WAIT is left on a port its rotation takes back as unused.
    if (cancelled(self)) {
      close_socket(/*reset=*/true);
      return core.failed(Step::wait, make_error_code(LibraryError::cancelled));
    }
    if (timed_out) {
      close_socket(/*reset=*/true);
      return core.timed_out();
    }
    if (ec) return fail(Step::connect, from_asio(ec));
    // The ticket asks for the local address only at a normal close (TcpSocket::close), as a
    // blocking Socket does: a reset close needs none (P7: one getsockname a connection less).
    LeaseTicket ticket(core.connected());
    std::lock_guard lock(s.mutex);
    s.result.emplace(TcpSocket(std::move(s.socket), std::move(ticket)));
    return Next::done;
  }

  // Next::race (racers.cppm): a racer's end or the core's next step, else a wait (empty).
  template <class Self>
  std::optional<Next> race_step(Self& self) {
    return race_report(*state_, *state_->core, clock().now(), cancelled(self), [&](Timer::duration d) {
      phase_ = Phase::racing;
      state_->wake.expires_after(std::min<Timer::duration>(d, longest_timer));
      state_->wake.async_wait(std::move(self));
    });
  }
  Timer& clock() const { return timer_or_system(connector_->options().timer); }

  template <class Self>
  void pause(Self& self, Timer::duration delay) {
    phase_ = Phase::pausing;
    std::lock_guard lock(state_->mutex);
    if (!state_->pause) state_->pause.emplace(state_->socket.get_executor());
    state_->pause->expires_after(std::min<Timer::duration>(delay, longest_timer));
    state_->pause->async_wait(std::move(self));
  }
  template <class Self>
  Next pause_ended(Self& self, std::error_code) {
    return state_->core->waited(!cancelled(self));
  }

  Next fail(Step step, std::error_code ec, std::string detail = {}) {
    close_socket();  // first, so a port that goes back to its rotation is really free
    return state_->core->failed(step, ec, std::move(detail));
  }
  void close_socket(bool reset = false) {
    std::lock_guard lock(state_->mutex);
    std::error_code ignored;
    if (!reset || !close_with_reset(state_->socket, ignored)) state_->socket.close(ignored);
  }

  template <class Self>
  void finish(Self& self) {
    auto& s = *state_;
    s.on_stop.reset();  // waits for a callback running on another thread
    if (!s.result) {
      {
        std::lock_guard lock(s.mutex);
        close_racers(s);  // a race given up with attempts still in flight
      }
      s.result.emplace(unexpected(s.core->take_error()));
    }
    // An observer that threw: its exception leaves io_context::run() (Asio's way for a handler's
    // throw) once the result, socket and lease included, is put away; the handler is not called.
    // Never from inside the initiating call: it is thrown from the posted step then.
    if (suspended_) {
      s.core->rethrow_hook_failure();
      return self.complete(std::move(*s.result));
    }
    phase_ = Phase::finishing;  // never complete inside the initiating call
    ::asio::post(std::move(self));
  }

  Connector* connector_;
  std::shared_ptr<state_type> state_;
  std::stop_token stop_;
  Phase phase_ = Phase::starting;
  bool suspended_ = false;
};

}  // namespace connpolicy::asio::detail
