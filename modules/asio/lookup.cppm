// A name's lookup for the Asio driver: both families at once on Asio's resolver, each answer
// kept in the operation's state as it comes. Internal to connpolicy.asio.
module;
#include <asio.hpp>
#include <algorithm>
#include <array>
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
import :connect_state;

namespace connpolicy::asio::detail {

using Answer = expected<std::vector<Endpoint>, NetError>;

inline bool answered(const auto& lookup) { return lookup.found || lookup.error; }
// IPv4's addresses are in and IPv6 has not answered yet (RFC 8305: wait a little for it).
template <class State>
bool awaits_ipv6(const State& s) {
  return !answered(s.lookups[0]) && s.lookups[1].found && !s.lookups[1].found->empty();
}

// Starts lookups[0] (IPv6) and lookups[1] (IPv4) of state->name. Call with state->mutex held.
// When both have answered, the attempt timer (the lookup's bound) is cancelled.
template <class State>
void start_lookups(const std::shared_ptr<State>& state) {
  using tcp = ::asio::ip::tcp;
  for (int i = 0; i < 2; ++i) {
    auto& l = state->lookups[i];
    l.found.reset();
    l.error = {};
    if (!l.resolver) l.resolver.emplace(state->socket.get_executor());
    l.resolver->async_resolve(
        i == 0 ? tcp::v6() : tcp::v4(), state->name->host(), std::to_string(state->name->port()),
        tcp::resolver::numeric_service, [state, i](std::error_code ec, tcp::resolver::results_type results) {
          std::lock_guard lock(state->mutex);
          auto& mine = state->lookups[i];
          if (ec) {
            mine.error = ec;
          } else {
            std::vector<Endpoint> found;
            for (const auto& r : results)
              if (Endpoint e = from_asio(r.endpoint()); std::ranges::find(found, e) == found.end()) found.push_back(e);
            mine.found = std::move(found);
          }
          // Both answered: go on. IPv4 first: the operation starts the resolution delay.
          if ((answered(state->lookups[0]) && answered(state->lookups[1])) || awaits_ipv6(*state))
            state->attempt_timer.cancel();
        });
  }
}

// Each family's answer once the lookup's time is up: its addresses, its error, or "no answer
// within `limit`" (that lookup is cancelled; a late answer counts for nothing). Call with the
// mutex held.
template <class State>
std::array<Answer, 2> take_answers(State& s, std::chrono::milliseconds limit) {
  std::array<Answer, 2> answers;
  for (int i = 0; i < 2; ++i) {
    auto& l = s.lookups[i];
    const std::string what = s.name->to_string() + (i == 0 ? ": IPv6 (AAAA)" : ": IPv4 (A)");
    if (l.found) {
      answers[i] = std::move(*l.found);
    } else if (l.error) {
      answers[i] = unexpected(NetError(Step::resolve, from_asio(l.error)).with_detail(what));
    } else {
      l.resolver->cancel();
      answers[i] = unexpected(NetError(Step::resolve, make_system_error(ETIMEDOUT))
                                  .with_detail(what + ": no answer within " + std::to_string(limit.count()) + " ms"));
    }
    l.found.reset();
    l.error = ::asio::error::operation_aborted;
  }
  return answers;
}

}  // namespace connpolicy::asio::detail
