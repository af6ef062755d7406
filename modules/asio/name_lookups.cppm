// A name's lookup for the Asio driver: both families at once, each answer told to the core as it
// comes (ConnectCore decides when the race may begin: RFC 8305's resolution delay is the core's,
// as for the blocking driver). The lookups are SystemResolver's, getaddrinfo on its bounded,
// shared helper threads: Asio's own resolver runs one lookup at a time per io_context (one
// background thread), so an A query would wait behind a slow AAAA one. Internal to connpolicy.asio.
module;
#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <utility>
export module connpolicy.asio:name_lookups;
import connpolicy.core;
import connpolicy.decision;
import :connect_state;

namespace connpolicy::asio::detail {

// Starts both lookups of state->name, each bounded by `limit` from `now`; an answer cancels
// state->wake, the operation's wait. Call with state->mutex held.
template <class State>
void start_lookups(const std::shared_ptr<State>& state, Timer::time_point now, std::chrono::milliseconds limit) {
  state->lookup_deadline = saturating_add(now, limit);
  state->lookups.reset();  // an older round's threads finish on their own
  state->lookups.emplace(
      SystemResolver{}.resolve_both(*state->name, limit, std::stop_token{}, [link = state->link] { (*link)(); }));
}

// An answer not told to the core yet, if any (a family still out once the limit has passed is
// answered with a timeout). Never waits.
template <class State>
std::optional<FamilyAnswer> take_answer(State& s, Timer::time_point now) {
  if (!s.lookups) return std::nullopt;
  return s.lookups->next(now);
}

// Next::lookup_wait: an answer to tell the core (both together when both are in), or the
// core's lookup_wake_at(); when neither, `wait(how long)` is called under the lock, so an
// answer that comes meanwhile cancels that very wait, and the result is empty.
template <class State, class Core, class Wait>
std::optional<Next> lookup_report(State& s, Core& core, Timer::time_point now, bool cancelled, Wait&& wait) {
  if (cancelled) return core.lookup_stopped();
  std::unique_lock lock(s.mutex);
  if (auto answer = take_answer(s, now)) {
    auto other = core.awaiting_answer() ? std::nullopt : take_answer(s, now);
    lock.unlock();  // the core may tell the bind policy, which takes its own lock
    if (!other) return core.lookup_answered(answer->family, std::move(answer->result), now);
    return resolved_together(core, *answer, *other);
  }
  if (now >= core.lookup_wake_at()) {
    lock.unlock();
    return core.lookup_woke(now);
  }
  wait(std::min(core.lookup_wake_at(), s.lookup_deadline) - now);
  return std::nullopt;
}

// While racing: an answer that came in meanwhile (its addresses join the race), if any.
template <class State, class Core>
std::optional<Next> late_answer(State& s, Core& core, Timer::time_point now) {
  if (!core.awaiting_answer()) return std::nullopt;
  std::unique_lock lock(s.mutex);
  auto answer = take_answer(s, now);
  lock.unlock();
  if (!answer) return std::nullopt;
  return core.lookup_answered(answer->family, std::move(answer->result), now);
}

}  // namespace connpolicy::asio::detail
