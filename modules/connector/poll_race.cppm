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

  void add(AttemptId id, Socket socket) { table_.add(id, std::move(socket)); }
  Socket take(AttemptId id) {
    if (std::optional<Socket> s = table_.take(id)) return std::move(*s);
    return Socket{};
  }
  // The core's close command: with a reset (the attempt did not finish, or finished too late).
  void close_reset(AttemptId id) {
    if (std::optional<Socket> s = table_.take(id)) s->close_reset();
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
// 10 ms ones while a lookup is out.
template <class Core, class System, class Socket, class Names>
void wait_for_attempts(Core& core, System& system, AttemptSockets<Socket>& attempts, const Command& command,
                       std::stop_token stop, Names& names, bool blocking_result) {
  using std::chrono::milliseconds;
  milliseconds left = std::chrono::ceil<milliseconds>(std::min<Timer::duration>(command.limit, std::chrono::hours(24)));
  milliseconds slice = left;
  if (stop.stop_possible()) slice = std::min(slice, milliseconds(50));
  if (command.answers_due) slice = std::min(slice, milliseconds(10));
  // A lone attempt (no race) is watched with no list to build: nothing allocated (P1).
  native_handle_type lone_handle{};
  AttemptId lone_id{};
  std::vector<native_handle_type> many_handles;
  std::vector<AttemptId> many_ids;
  if (attempts.size() == 1) {
    attempts.for_each([&](AttemptId id, Socket& s) {
      lone_id = id;
      lone_handle = s.native_handle();
    });
  } else {
    attempts.for_each([&](AttemptId id, Socket& s) {
      many_ids.push_back(id);
      many_handles.push_back(s.native_handle());
    });
  }
  const std::span<const native_handle_type> handles =
      many_handles.empty() ? std::span(&lone_handle, 1) : std::span<const native_handle_type>(many_handles);
  const std::span<const AttemptId> ids =
      many_ids.empty() ? std::span(&lone_id, 1) : std::span<const AttemptId>(many_ids);
  // One attempt's outcome: its socket is writable (connected, or failed: SO_ERROR says).
  const auto outcome = [&](std::size_t i) {
    const native_handle_type h = handles[i];
    Step step = Step::connect;
    std::error_code ec = system.pending_error(h);
    if (!ec && blocking_result && (ec = system.set_nonblocking(h, false))) step = Step::set_option;
    if (!ec) return core.handle(Connected{ids[i]});
    attempts.take(ids[i]).close();
    core.handle(Failed{ids[i], step, ec, step == Step::set_option ? "FIONBIO" : ""});
  };
  for (int interrupts = 0;;) {
    const milliseconds step = std::min(left, slice);
    std::optional<std::size_t> ready;
    std::error_code failure;
    if (handles.size() == 1) {  // a lone attempt: its own wait, no index to find
      auto r = system.wait_writable(handles[0], step);
      if (!r)
        failure = r.error();
      else if (*r)
        ready = 0;
    } else {
      auto r = system.wait_any_writable(handles, step);
      if (!r)
        failure = r.error();
      else
        ready = *r;
    }
    if (failure) {
      // NativeSystem resumes its own waits after a signal; another system may report EINTR: wait
      // the step again, up to 1000 times (no clock read on the common path).
      if (failure == std::errc::interrupted && ++interrupts <= 1000) continue;
      attempts.take(ids[0]).close();  // the sockets cannot be watched: each fails with why, in turn
      return core.handle(Failed{ids[0], Step::wait, failure});
    }
    if (ready) return outcome(*ready);
    left -= step;  // timed out: the whole step passed
    if (stop.stop_requested()) return core.handle(Stopped{});
    if (command.answers_due)
      if (auto answer = names.poll()) return core.handle(std::move(*answer));
    if (left <= milliseconds::zero()) return core.handle(Woke{});
  }
}

}  // namespace connpolicy::detail
