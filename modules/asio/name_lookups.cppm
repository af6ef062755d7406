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

// The answers not told to the core yet, if any: one, or both when both are in (a family still
// out once the limit has passed is answered with a timeout). Never waits. Call with the state's
// mutex held.
template <class State>
std::optional<Answered> take_answers(State& s, Timer::time_point now) {
  if (!s.lookups) return std::nullopt;
  std::optional<FamilyAnswer> answer = s.lookups->next(now);
  if (!answer) return std::nullopt;
  return Answered{std::move(*answer), s.lookups->next(now)};
}

}  // namespace connpolicy::asio::detail
