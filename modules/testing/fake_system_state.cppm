// FakeSystem's state, shared by its implementation files. Internal to connpolicy.testing.
module;
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>
module connpolicy.testing:fake_system_state;
import connpolicy.core;
import :fake_system;
import :manual_timer;

namespace connpolicy {

struct Outcome {
  std::error_code error;
  bool timeout = false;
};
struct Handle {
  Family family;
  bool open = true;
  std::optional<Endpoint> local;
  std::optional<Endpoint> remote;
  std::map<SocketOption, int> options;
  // A routed connect (FakeSystem::route): when it finishes, and how. max: never.
  std::optional<Timer::time_point> ready_at;
  std::error_code outcome;
};
constexpr std::size_t call_kinds = static_cast<std::size_t>(Call::wait_any_writable) + 1;

struct FakeSystem::State {
  mutable std::mutex mutex;
  std::array<std::deque<Outcome>, call_kinds> scripts;
  std::map<native_handle_type, Handle> handles;
  std::vector<CallRecord> calls;
  native_handle_type next_handle = first_handle;
  std::uint16_t next_port = first_ephemeral_port;
  int opened = 0, closed = 0, bad_closes = 0;
  std::vector<std::pair<Endpoint, FakeRoute>> routes;
  ManualTimer* clock = nullptr;  // the routes' time

  // The scripted outcome for the next `call`, if any.
  std::optional<Outcome> next(Call call) {
    auto& queue = scripts[static_cast<std::size_t>(call)];
    if (queue.empty()) return std::nullopt;
    Outcome o = queue.front();
    queue.pop_front();
    return o;
  }
  // The open handle `h`, or nullptr (a call on it then fails with EBADF, as the OS would).
  Handle* find(native_handle_type h) {
    auto it = handles.find(h);
    return it != handles.end() && it->second.open ? &it->second : nullptr;
  }
  Endpoint ephemeral(Family family) {
    const std::uint16_t port = next_port++;
    return family == Family::ipv4 ? Endpoint::any_v4(port) : Endpoint::any_v6(port);
  }
  // The common start of a call on handle `r.handle`: takes the call's scripted outcome, if any,
  // and sets r.result (EBADF when the handle is not open). Returns the handle, or nullptr.
  Handle* start(CallRecord& r, std::optional<Outcome>& scripted) {
    Handle* handle = find(r.handle);
    scripted = next(r.call);
    r.result = !handle ? make_system_error(EBADF) : scripted ? scripted->error : std::error_code{};
    return handle;
  }
  // A connect of `handle` to `remote` that a route times: in progress, until its time.
  void route_connect(Handle& handle, const Endpoint& remote, std::error_code& result) {
    for (const auto& [to, route] : routes)
      if (to == remote) {
        handle.ready_at = route.after ? saturating_add(clock->now(), *route.after) : Timer::time_point::max();
        handle.outcome = route.outcome;
        result = std::make_error_code(std::errc::operation_in_progress);
        return;
      }
  }
  // The first of `hs` to finish within `timeout` (unrouted ones are ready at once), the clock
  // moved to its time; or nullopt, the clock moved by the whole timeout. Closed handles never are.
  std::optional<std::size_t> first_ready(std::span<const native_handle_type> hs, std::chrono::milliseconds timeout) {
    const Timer::time_point now = clock ? clock->now() : Timer::time_point{};
    std::optional<std::size_t> first;
    Timer::time_point at = Timer::time_point::max();
    for (std::size_t i = 0; i < hs.size(); ++i)
      if (const Handle* h = find(hs[i]); h && h->ready_at.value_or(now) < at) {
        at = h->ready_at.value_or(now);
        first = i;
      }
    if (first && at <= saturating_add(now, timeout)) {
      if (clock && at > now) clock->advance(at - now);
      return first;
    }
    if (clock) clock->advance(timeout);
    return std::nullopt;
  }
  std::error_code record(CallRecord r) {
    if (clock) r.time = clock->now();
    calls.push_back(r);
    return r.result;
  }
};

}  // namespace connpolicy
