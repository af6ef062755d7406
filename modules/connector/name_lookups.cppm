// How the blocking Connector asks for a name's addresses: one family after the other with a
// plain Resolver, or both at once with a BothFamiliesResolver (then the race may begin before
// the second answer, as RFC 8305 asks; ConnectCore decides when). Each kind answers the core's
// Next::resolve and Next::lookup_wait, and looks for a late answer between the race's waits.
module;
#include <chrono>
#include <optional>
#include <stop_token>
#include <utility>
export module connpolicy.connector:name_lookups;
import connpolicy.core;
import connpolicy.decision;

namespace connpolicy::detail {

// A list of endpoints: nothing to look up.
struct NoNames {
  template <class Core>
  Next resolve(Core& core) {
    return core.lookup_stopped();  // never asked: the core resolves names only
  }
  template <class Core>
  Next wait(Core& core) {
    return core.lookup_stopped();
  }
  template <class Core>
  std::optional<Next> poll(Core&) {
    return std::nullopt;
  }
};

// AAAA, then A, each bounded by the core's limit.
template <class R>
struct OneFamilyAtATime {
  R& resolver;
  std::stop_token stop;

  template <class Core>
  Next resolve(Core& core) {
    auto v6 = resolver.resolve(core.name(), Family::ipv6, core.resolve_timeout(), stop);
    if (!v6 && v6.error() == Errc::cancelled) return core.resolve_failed(std::move(v6).error());
    return core.resolved(v6, resolver.resolve(core.name(), Family::ipv4, core.resolve_timeout(), stop));
  }
  template <class Core>
  Next wait(Core& core) {
    return core.lookup_stopped();  // never: the core waits only for lookups asked at once
  }
  template <class Core>
  std::optional<Next> poll(Core&) {
    return std::nullopt;
  }
};

// AAAA and A at once; each answer goes to the core as it comes.
template <class R>
struct BothFamiliesAtOnce {
  using lookups_type = decltype(std::declval<R&>().resolve_both(std::declval<const HostPort&>(),
                                                                std::chrono::milliseconds{}, std::stop_token{}));
  R& resolver;
  std::stop_token stop;
  Timer& clock;
  std::optional<lookups_type> lookups{};

  template <class Core>
  Next resolve(Core& core) {
    lookups.emplace(resolver.resolve_both(core.name(), core.resolve_timeout(), stop));
    return wait(core);
  }
  // Until an answer, or the core's lookup_wake_at(). Both in at once go to the core together.
  template <class Core>
  Next wait(Core& core) {
    std::optional<FamilyAnswer> answer = lookups->next(core.lookup_wake_at());
    if (stop.stop_requested()) return core.lookup_stopped();
    if (!answer) return core.lookup_woke(clock.now());
    if (!core.awaiting_answer())
      if (std::optional<FamilyAnswer> other = lookups->next(clock.now()))
        return resolved_together(core, *answer, *other);
    return core.lookup_answered(answer->family, std::move(answer->result), clock.now());
  }
  // An answer that came while the race waited, if any (never waits).
  template <class Core>
  std::optional<Next> poll(Core& core) {
    if (!lookups || !core.awaiting_answer()) return std::nullopt;
    std::optional<FamilyAnswer> answer = lookups->next(clock.now());
    if (!answer) return std::nullopt;
    return core.lookup_answered(answer->family, std::move(answer->result), clock.now());
  }
};

}  // namespace connpolicy::detail
