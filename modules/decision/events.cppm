// What an observer of a Connector sees: one event per attempt.
module;
#include <chrono>
#include <concepts>
#include <optional>
#include <system_error>
#include <type_traits>
export module connpolicy.decision:events;
import connpolicy.core;
import connpolicy.errors;

export namespace connpolicy {

// One attempt as an observer sees it (for logs and metrics). It owns everything it holds, so an
// observer may keep events after connect() returns.
struct AttemptEvent {
  Endpoint remote;
  std::optional<Endpoint> local;  // the local address the bind policy chose (bind() was called
                                  // when step is bind or later); empty: the kernel chose
  int attempt = 0;                // attempts made so far, this one included (a failure before any
                                  // syscall, such as every port cooling, adds none)
  Step step = Step::connect;      // where it failed (or Step::connect on success)
  std::error_code error;          // what the OS or connpolicy said; empty: connected
  Errc condition = Errc::other;   // what kind of failure, as NetError::condition() says (the
                                  // one to compare: see NetError); meaningless on success
  std::optional<Action> action;   // what happens next (empty on success, and for a racer whose
                                  // failure leaves the race going on: others are in flight)
  Timer::duration delay{};        // the wait before the next round, for Action::retry
  std::optional<GiveUp> gave_up;  // for Action::give_up when the retry policy said no: why
  // False for a round that failed before any syscall: the lookup (step resolve), or a bind policy
  // with nothing to lend. `attempt` is then the count so far, and `remote` may be unspecified
  // (0.0.0.0 with the port) when no name was resolved yet: `name` says what was asked.
  bool attempted = true;
  std::optional<HostPort> name;  // the name this connect began with, if it began with one
  // On the connector's Timer (ConnectorOptions::timer): when the attempt was planned, its
  // syscalls about to be made, and how long until it ended (connected, failed, or given up on).
  // A round that made no attempt ended as it started: took is 0.
  Timer::time_point started{};
  Timer::duration took{};
  // Closed unfinished, with no answer of its own: another address won the race, or the connect
  // ended (a stop, a deadline) while it was in flight. `error` is then LibraryError::cancelled.
  bool abandoned = false;
  bool connected() const noexcept { return !error; }
};

// The default observer: nothing, at no cost (the Connector does not even build the event).
struct NoObserver {
  void operator()(const AttemptEvent&) const noexcept {}
};

template <class O>
concept ConnectObserver = std::copy_constructible<O> && std::invocable<O&, const AttemptEvent&>;

// Tells `observer` of one attempt's end (error null: connected). NoObserver costs nothing: the
// event is not even built.
template <ConnectObserver Observer>
void notify(Observer& observer, const Endpoint& remote, const std::optional<Endpoint>& local, int attempts,
            const NetError* error, std::optional<Action> action, Timer::duration delay, bool attempted = true,
            const HostPort* name = nullptr, Timer::time_point started = {}, Timer::time_point ended = {},
            bool abandoned = false) {
  if constexpr (!std::is_same_v<Observer, NoObserver>) {
    observer(AttemptEvent{remote, local, attempts, error ? error->step() : Step::connect,
                          error ? error->code() : std::error_code{}, error ? error->condition() : Errc::other, action,
                          delay, error ? error->gave_up() : std::nullopt, attempted,
                          name ? std::optional<HostPort>(*name) : std::nullopt, started, ended - started, abandoned});
  }
}

}  // namespace connpolicy
