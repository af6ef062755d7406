// The Asio driver's side of a Happy Eyeballs race: a socket per racer, each connecting on its
// own, and a wake timer the operation waits on, which a racer's end (or a stop) cancels. Which
// address starts when and what a failure leads to are ConnectCore's decisions, as for the
// blocking driver. Internal to connpolicy.asio; call with the state's mutex held.
module;
#include <asio.hpp>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
export module connpolicy.asio:racers;
import connpolicy.core;
import connpolicy.decision;
import :tcp_socket;
import :connect_state;

namespace connpolicy::asio::detail {

// Starts racer `id`'s connect on `socket` (bound already, as its plan says).
template <class State>
void launch_racer(const std::shared_ptr<State>& state, ::asio::ip::tcp::socket socket, const Endpoint& remote,
                  std::size_t id) {
  Racer& r = state->racers.emplace_back(id, std::move(socket));
  r.socket.async_connect(to_asio(remote), [state, id](std::error_code ec) {
    std::lock_guard lock(state->mutex);
    for (Racer& mine : state->racers)
      if (mine.id == id && !mine.finished) {  // else closed by the race's end: nothing to say
        mine.finished = true;
        mine.ec = ec;
        state->wake.cancel();
      }
  });
}

// The race is over: every racer left is closed with a reset (no TIME_WAIT, even for one that
// connected a moment too late). Their connects end with operation_aborted, heard by nobody.
template <class State>
void close_racers(State& s) {
  for (Racer& r : s.racers) {
    std::error_code ignored;
    if (!close_with_reset(r.socket, ignored)) r.socket.close(ignored);
  }
  s.racers.clear();
}

// The first racer whose connect has ended (finished), or racer `id`; taken out of the race.
template <class State>
std::optional<Racer> take_racer(State& s, std::optional<std::size_t> id = std::nullopt) {
  for (auto it = s.racers.begin(); it != s.racers.end(); ++it)
    if (id ? it->id == *id : it->finished) {
      Racer r = std::move(*it);
      s.racers.erase(it);
      return r;
    }
  return std::nullopt;
}

// One look at the race (Next::race): a racer that ended is reported to the core (the winner
// becomes s.result), else an overdue one, else the next address's turn; when none of these,
// `wait(until the core's wake_at())` is called under the lock, so a racer that ends meanwhile
// cancels that very wait, and the answer is empty.
template <class State, class Core, class Wait>
std::optional<Next> race_report(State& s, Core& core, Timer::time_point now, bool cancelled, Wait&& wait) {
  std::unique_lock lock(s.mutex);
  if (cancelled) {
    close_racers(s);
    return core.stopped();
  }
  if (auto r = take_racer(s)) {
    core.answered(r->id);
    if (r->ec) {
      std::error_code ignored;
      r->socket.close(ignored);
      lock.unlock();  // the core tells the bind policy, which may take its own lock
      return core.failed(Step::connect, from_asio(r->ec));
    }
    close_racers(s);
    lock.unlock();  // the observer may stop the operation, whose stop callback takes this lock
    LeaseTicket ticket(core.connected());
    lock.lock();
    s.result.emplace(TcpSocket(std::move(r->socket), std::move(ticket)));
    return Next::done;
  }
  if (auto id = core.overdue(now)) {
    std::error_code ignored;
    take_racer(s, *id)->socket.close(ignored);
    lock.unlock();
    core.answered(*id);
    return core.timed_out();
  }
  if (Next next = core.woke(now); next != Next::race) return next;
  wait(core.wake_at() - now);
  return std::nullopt;
}

}  // namespace connpolicy::asio::detail
