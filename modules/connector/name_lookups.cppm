// How the blocking Connector asks for a name's addresses: one family after the other with a
// plain Resolver, or both at once with a BothFamiliesResolver (then the race may begin before
// the second answer, as RFC 8305 asks; ConnectCore decides when). Each kind starts the lookups
// for Command::Kind::look_up, waits for an answer when the core's wait is for one alone (next),
// and looks for a late answer between the race's waits (poll).
module;
#include <chrono>
#include <optional>
#include <stop_token>
#include <utility>
export module connpolicy.connector:name_lookups;
import connpolicy.core;
import connpolicy.decision;

namespace connpolicy::detail {

// A list of endpoints: nothing to look up (the core never asks).
struct NoNames {
  std::optional<Answered> look_up(const HostPort&, std::chrono::milliseconds) { return std::nullopt; }
  std::optional<Answered> next(Timer::time_point) { return std::nullopt; }
  std::optional<Answered> poll() { return std::nullopt; }
};

// AAAA, then A, each bounded by the core's limit: both answers at once.
template <class R>
struct OneFamilyAtATime {
  R& resolver;
  std::stop_token stop;

  std::optional<Answered> look_up(const HostPort& name, std::chrono::milliseconds limit) {
    auto v6 = resolver.resolve(name, Family::ipv6, limit, stop);
    auto v4 = resolver.resolve(name, Family::ipv4, limit, stop);  // after a stop, it ends at once
    return Answered{{Family::ipv6, std::move(v6)}, FamilyAnswer{Family::ipv4, std::move(v4)}};
  }
  std::optional<Answered> next(Timer::time_point) { return std::nullopt; }
  std::optional<Answered> poll() { return std::nullopt; }
};

// AAAA and A at once; each answer goes to the core as it comes (both together when both are in).
template <class R>
struct BothFamiliesAtOnce {
  using lookups_type = decltype(std::declval<R&>().resolve_both(std::declval<const HostPort&>(),
                                                                std::chrono::milliseconds{}, std::stop_token{}));
  R& resolver;
  std::stop_token stop;
  Timer& clock;
  std::optional<lookups_type> lookups{};

  std::optional<Answered> look_up(const HostPort& name, std::chrono::milliseconds limit) {
    lookups.emplace(resolver.resolve_both(name, limit, stop));
    return std::nullopt;
  }
  // Waits until an answer, `until` or the stop.
  std::optional<Answered> next(Timer::time_point until) {
    if (!lookups) return std::nullopt;
    std::optional<FamilyAnswer> answer = lookups->next(until);
    if (!answer) return std::nullopt;
    return Answered{std::move(*answer), lookups->next(clock.now())};
  }
  // An answer that came while the race waited, if any (never waits).
  std::optional<Answered> poll() {
    if (!lookups) return std::nullopt;
    std::optional<FamilyAnswer> answer = lookups->next(clock.now());
    if (!answer) return std::nullopt;
    return Answered{std::move(*answer), std::nullopt};
  }
};

}  // namespace connpolicy::detail
