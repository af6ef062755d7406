// A name's lookup for the Asio driver: both families at once on Asio's resolver, each answer
// kept in the operation's state as it comes and told to the core (ConnectCore decides when the
// race may begin: RFC 8305's resolution delay is the core's, as for the blocking driver).
// Internal to connpolicy.asio.
module;
#include <asio.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
export module connpolicy.asio:lookup;
import connpolicy.core;
import connpolicy.decision;
import :connect_state;

namespace connpolicy::asio::detail {

inline bool answered(const auto& lookup) { return lookup.found || lookup.error; }

// Starts lookups[0] (IPv6) and lookups[1] (IPv4) of state->name, each bounded by `limit` from
// `now`. An answer cancels state->wake, the operation's wait. Call with state->mutex held.
template <class State>
void start_lookups(const std::shared_ptr<State>& state, Timer::time_point now, std::chrono::milliseconds limit) {
  using tcp = ::asio::ip::tcp;
  state->lookup_limit = limit;
  state->lookup_deadline = saturating_add(now, limit);
  const unsigned round = ++state->lookup_round;
  for (int i = 0; i < 2; ++i) {
    auto& l = state->lookups[i];
    l.found.reset();
    l.error = {};
    l.reported = false;
    if (!l.resolver) l.resolver.emplace(state->socket.get_executor());
    l.resolver->async_resolve(
        i == 0 ? tcp::v6() : tcp::v4(), state->name->host(), std::to_string(state->name->port()),
        tcp::resolver::numeric_service, [state, i, round](std::error_code ec, tcp::resolver::results_type results) {
          std::lock_guard lock(state->mutex);
          auto& mine = state->lookups[i];
          if (mine.reported || state->lookup_round != round) return;  // timed out already, or an older round's
          if (ec) {
            mine.error = ec;
          } else {
            std::vector<Endpoint> found;
            for (const auto& r : results)
              if (Endpoint e = from_asio(r.endpoint()); std::ranges::find(found, e) == found.end()) found.push_back(e);
            mine.found = std::move(found);
          }
          state->wake.cancel();
        });
  }
}

// An answer not told to the core yet, if any: its addresses, its error, or, once the lookup's
// limit has passed by `now`, "no answer within" it (that lookup is cancelled). Call with the
// mutex held.
template <class State>
std::optional<FamilyAnswer> take_answer(State& s, Timer::time_point now) {
  for (int i = 0; i < 2; ++i) {
    auto& l = s.lookups[i];
    if (l.reported || !l.resolver || (!answered(l) && now < s.lookup_deadline)) continue;
    l.reported = true;
    const Family family = i == 0 ? Family::ipv6 : Family::ipv4;
    const std::string what = s.name->to_string() + (i == 0 ? ": IPv6 (AAAA)" : ": IPv4 (A)");
    if (l.found) return FamilyAnswer{family, std::move(*l.found)};
    if (l.error) return FamilyAnswer{family, unexpected(NetError(Step::resolve, from_asio(l.error)).with_detail(what))};
    l.resolver->cancel();
    return FamilyAnswer{family, unexpected(NetError(Step::resolve, make_system_error(ETIMEDOUT))
                                               .with_detail(what + ": no answer within " +
                                                            std::to_string(s.lookup_limit.count()) + " ms"))};
  }
  return std::nullopt;
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
    if (answer->family == Family::ipv4) std::swap(answer, other);
    return core.resolved(answer->result, other->result);
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
