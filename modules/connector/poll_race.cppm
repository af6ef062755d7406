// The blocking driver's sockets in flight, and its wait for them: one poll() over every attempt's
// socket (a lone attempt's own wait_writable), in slices so that a stop or a late lookup answer
// is seen soon. What each outcome leads to (the race, timeouts, the next address's turn) is
// ConnectCore's decision, as for the Asio driver.
module;
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
export module connpolicy.connector:poll_race;
import connpolicy.core;
import connpolicy.decision;

namespace connpolicy::detail {

// Every socket in flight, by attempt. Destroyed with sockets left (an exception on the way), it
// closes them with a reset: no TIME_WAIT on a port the core gives back as unused.
template <class Socket>
class AttemptSockets {
 public:
  AttemptSockets() = default;
  AttemptSockets(const AttemptSockets&) = delete;
  AttemptSockets& operator=(const AttemptSockets&) = delete;
  ~AttemptSockets() {
    if (!table_.empty()) close_all();
  }

  // Attempt `id`'s socket, made in its place (no move on the common path: P1).
  template <class... Args>
  Socket& add(AttemptId id, Args&&... args) {
    return table_.add(id, std::forward<Args>(args)...);
  }
  Socket* find(AttemptId id) noexcept { return table_.find(id); }
  void erase(AttemptId id) { table_.erase(id); }
  // An attempt that failed: closed normally, before the core hears of it (its port goes back
  // then, and must be really free).
  void close(AttemptId id) {
    if (Socket* s = table_.find(id)) {
      s->close();
      table_.erase(id);
    }
  }
  // The core's close command: with a reset (the attempt did not finish, or finished too late).
  void close_reset(AttemptId id) {
    if (Socket* s = table_.find(id)) {
      s->close_reset();
      table_.erase(id);
    }
  }
  void close_all() noexcept {
    table_.for_each([](AttemptId, Socket& s) { s.close_reset(); });
    table_.clear();
  }
  bool empty() const noexcept { return table_.empty(); }
  std::size_t size() const noexcept { return table_.size(); }
  template <class F>
  void for_each(F f) {
    table_.for_each(f);
  }

 private:
  AttemptTable<Socket> table_;
};

// Command::Kind::wait with sockets in flight: reports to `core` the first outcome (Connected or
// Failed, the socket closed first), a stop, a late answer (when the command says one is due), or
// Woke once the command's whole limit has passed. Waits in 50 ms slices when a stop can come and
// 10 ms ones while a lookup is out. `watch(step)` waits up to `step` for one of `ids`' sockets:
// its index, nullopt when none was ready, or why the sockets cannot be watched.
template <class Core, class System, class Socket, class Names, class Watch>
void wait_in_slices(Core& core, System& system, AttemptSockets<Socket>& attempts, const Command& command,
                    std::stop_token stop, Names& names, bool blocking_result, std::span<const AttemptId> ids,
                    std::span<const native_handle_type> handles, Watch watch) {
  using std::chrono::milliseconds;
  milliseconds left = std::chrono::ceil<milliseconds>(std::min<Timer::duration>(command.limit, std::chrono::hours(24)));
  milliseconds slice = left;
  if (stop.stop_possible()) slice = std::min(slice, milliseconds(50));
  if (command.answers_due) slice = std::min(slice, milliseconds(10));
  for (int interrupts = 0;;) {
    const milliseconds step = std::min(left, slice);
    const expected<std::optional<std::size_t>, std::error_code> r = watch(step);
    if (!r) {
      // NativeSystem resumes its own waits after a signal; another system may report EINTR: wait
      // the step again, up to 1000 times (no clock read on the common path).
      if (r.error() == std::errc::interrupted && ++interrupts <= 1000) continue;
      attempts.close(ids[0]);  // the sockets cannot be watched: each fails with why, in turn
      return core.handle(Failed{ids[0], Step::wait, r.error()});
    }
    if (const std::optional<std::size_t> ready = *r) {
      // Its socket is writable: connected, or failed (SO_ERROR says).
      const AttemptId id = ids[*ready];
      const native_handle_type h = handles[*ready];
      Step failed_at = Step::connect;
      std::error_code ec = system.pending_error(h);
      if (!ec && blocking_result && (ec = system.set_nonblocking(h, false))) failed_at = Step::set_option;
      if (!ec) [[likely]]
        return core.handle(Connected{id});
      attempts.close(id);
      return core.handle(Failed{id, failed_at, ec, failed_at == Step::set_option ? "FIONBIO" : ""});
    }
    left -= step;  // timed out: the whole step passed
    if (stop.stop_requested()) return core.handle(Stopped{});
    if (command.answers_due)
      if (auto answer = names.poll()) return core.handle(std::move(*answer));
    if (left <= milliseconds::zero()) return core.handle(Woke{});
  }
}

template <class Core, class System, class Socket, class Names>
void wait_for_attempts(Core& core, System& system, AttemptSockets<Socket>& attempts, const Command& command,
                       std::stop_token stop, Names& names, bool blocking_result) {
  using Ready = expected<std::optional<std::size_t>, std::error_code>;
  if (attempts.size() == 1) {  // a lone attempt: its own wait_writable, no list built (P1)
    AttemptId id{};
    native_handle_type h{};
    attempts.for_each([&](AttemptId i, Socket& s) {
      id = i;
      h = s.native_handle();
    });
    return wait_in_slices(core, system, attempts, command, stop, names, blocking_result, std::span(&id, 1),
                          std::span(&h, 1), [&](std::chrono::milliseconds step) -> Ready {
                            auto r = system.wait_writable(h, step);
                            if (!r) return unexpected(r.error());
                            return *r ? std::optional<std::size_t>(0) : std::nullopt;
                          });
  }
  std::vector<AttemptId> ids;
  std::vector<native_handle_type> handles;
  attempts.for_each([&](AttemptId i, Socket& s) {
    ids.push_back(i);
    handles.push_back(s.native_handle());
  });
  wait_in_slices(core, system, attempts, command, stop, names, blocking_result, ids, handles,
                 [&](std::chrono::milliseconds step) -> Ready { return system.wait_any_writable(handles, step); });
}

}  // namespace connpolicy::detail
