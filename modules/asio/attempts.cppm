// The Asio driver's attempts in flight: a socket each, connecting on its own, its outcome kept
// for the operation, which waits on its wake timer (the outcome cancels that wait). Which
// attempt starts when, and what an outcome leads to, are ConnectCore's decisions, as for the
// blocking driver. Internal to connpolicy.asio; call with the state's mutex held.
module;
#include <asio.hpp>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
export module connpolicy.asio:attempts;
import connpolicy.core;
import connpolicy.decision;
import :tcp_socket;
import :connect_state;

namespace connpolicy::asio::detail {

// Starts attempt `id`'s connect on its socket (bound already, as its plan says); its end is kept
// for the operation, and wakes it.
template <class State>
void start_connect(const std::shared_ptr<State>& state, AttemptId id, Attempt& a) {
  a.started = true;
  a.socket.async_connect(to_asio(a.remote), [state, id](std::error_code ec) {
    std::lock_guard lock(state->mutex);
    if (Attempt* mine = state->attempts.find(id); mine && !mine->finished) {  // else closed already
      mine->finished = true;
      mine->ec = ec;
      state->wake.cancel();
    }
  });
}

// The core's close command: with a reset (no TIME_WAIT, even for one that connected a moment too
// late). Its connect ends with operation_aborted, heard by nobody.
inline void close_reset(Attempt& a) noexcept {
  std::error_code ignored;
  if (!close_with_reset(a.socket, ignored)) a.socket.close(ignored);
}
// Closed in its place (an asio socket costs a service call per move), then put away. A failed
// attempt is closed the same way: it never connected, so a reset sends nothing.
template <class State>
void close_attempt(State& s, AttemptId id) {
  if (Attempt* a = s.attempts.find(id)) {
    close_reset(*a);
    s.attempts.erase(id);
  }
}
template <class State>
void close_attempts(State& s) noexcept {
  s.attempts.for_each([](AttemptId, Attempt& a) { close_reset(a); });
  s.attempts.clear();
}

}  // namespace connpolicy::asio::detail
