// The blocking driver's side of a Happy Eyeballs race: one poll() over every racer's socket,
// and what it saw told to the core. Which address starts when, which failure ends what, and
// when to give up are ConnectCore's decisions, as for the Asio driver.
module;
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
export module connpolicy.connector:poll_race;
import connpolicy.core;
import connpolicy.decision;

namespace connpolicy::detail {

template <class Socket>
struct RacingSocket {
  std::size_t id;  // the core's
  Socket socket;
};

// The race is over: every racer still in flight is closed with a reset (no TIME_WAIT, even for
// one that connected a moment too late).
template <class Socket>
void close_racers(std::vector<RacingSocket<Socket>>& racers) noexcept {
  for (RacingSocket<Socket>& r : racers) r.socket.close_reset();
  racers.clear();
}

// Takes racer `i` out of the race: the core's next report speaks of it.
template <class Core, class Socket>
Socket take_racer(Core& core, std::vector<RacingSocket<Socket>>& racers, std::size_t i) {
  Socket socket = std::move(racers[i].socket);
  core.answered(racers[i].id);
  racers.erase(racers.begin() + static_cast<std::ptrdiff_t>(i));
  return socket;
}

// One wait of the race (Next::race): until a racer's socket answers or the core's wake_at(), in
// 50 ms slices when a stop can come. `winner` gets the socket that connected.
template <class Core, class System, class Socket>
Next race_step(Core& core, System& system, Timer& clock, std::stop_token stop,
               std::vector<RacingSocket<Socket>>& racers, Socket& winner, bool blocking_result) {
  using std::chrono::milliseconds;
  std::vector<native_handle_type> handles;
  handles.reserve(racers.size());
  for (const RacingSocket<Socket>& r : racers) handles.push_back(r.socket.native_handle());
  const Timer::time_point now = clock.now(), wake = core.wake_at();
  milliseconds left = milliseconds::zero();
  if (wake > now) left = std::chrono::ceil<milliseconds>(std::min<Timer::duration>(wake - now, std::chrono::hours(24)));
  if (stop.stop_possible()) left = std::min(left, milliseconds(50));
  // A family's lookup is still out: its addresses join as soon as they come, so look every 10 ms.
  if (core.awaiting_answer()) left = std::min(left, milliseconds(10));
  auto ready = system.wait_any_writable(handles, left);
  if (!ready) {  // the sockets cannot be watched: each racer fails with why, one wait at a time
    take_racer(core, racers, 0).close();
    return core.failed(Step::wait, ready.error());
  }
  if (*ready) {
    const native_handle_type h = racers[**ready].socket.native_handle();
    Step step = Step::connect;
    std::error_code ec = system.pending_error(h);
    if (!ec && blocking_result && (ec = system.set_nonblocking(h, false))) step = Step::set_option;
    Socket socket = take_racer(core, racers, **ready);
    if (ec) {
      socket.close();
      return core.failed(step, ec, step == Step::set_option ? "FIONBIO" : "");
    }
    close_racers(racers);
    winner = std::move(socket);
    winner.attach_lease(core.connected());
    return Next::done;
  }
  if (stop.stop_requested()) {
    close_racers(racers);
    return core.stopped();
  }
  if (auto id = core.overdue(clock.now())) {
    const auto it = std::ranges::find(racers, *id, &RacingSocket<Socket>::id);
    take_racer(core, racers, static_cast<std::size_t>(it - racers.begin())).close();
    return core.timed_out();
  }
  return core.woke(clock.now());
}

}  // namespace connpolicy::detail
