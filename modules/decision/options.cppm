// What the Connector is told, and what it refuses before any syscall: destinations and sources
// TCP cannot use, and options that mean nothing (its own, and any policy's check()).
module;
#include <chrono>
#include <concepts>
#include <optional>
#include <span>
#include <string>
#include <utility>
export module connpolicy.decision:options;
import connpolicy.core;

export namespace connpolicy {

// Why `remote` cannot be a TCP destination, or nullptr. Linux quietly connects 0.0.0.0 to this
// host and Windows refuses it (10049), so the library refuses it everywhere: say 127.0.0.1.
inline const char* not_a_destination(const Endpoint& remote) noexcept {
  if (remote.port() == 0) return "port 0 is not a destination (it means \"any port\" when binding)";
  const auto& b = remote.bytes();
  // The common case, a plain IPv4 address, in one look at its first octet (the predicates below
  // each see through the mapped form, which costs a copy apiece: P1 in docs/benchmarks.md).
  if (remote.is_v4() && b[0] != 0 && b[0] < 224) return nullptr;
  const Endpoint e = remote.unmapped();
  if (e.is_unspecified())
    return "the unspecified address (0.0.0.0 or ::) is not a destination; for this host use 127.0.0.1 or ::1";
  if (e.is_multicast()) return "a multicast address is not a TCP destination";
  if (e.is_broadcast()) return "the broadcast address is not a TCP destination";
  return nullptr;
}

// Why `local` cannot be a TCP source address, or nullptr (whichever bind policy offered it).
inline const char* not_a_source(const Endpoint& local) noexcept {
  if (local.is_multicast()) return "a multicast address cannot be a TCP source address";
  if (local.is_broadcast()) return "the broadcast address cannot be a TCP source address";
  return nullptr;
}

// Why a connect to `remotes` cannot start: none given, or one TCP cannot use (nothing is sent
// to any of them then).
// destinations_usable() is the test alone, inline on every connect's path; the error is built
// only when it says no.
inline bool destinations_usable(std::span<const Endpoint> remotes) noexcept {
  if (remotes.empty()) return false;
  for (const Endpoint& remote : remotes)
    if (not_a_destination(remote)) return false;
  return true;
}
inline std::optional<NetError> destinations_problem(std::span<const Endpoint> remotes) {
  if (remotes.empty()) return NetError(Step::connect, LibraryError::invalid_endpoint, "no endpoint to connect to");
  for (const Endpoint& remote : remotes)
    if (const char* why = not_a_destination(remote))
      return NetError(Step::connect, LibraryError::invalid_endpoint, why).with_remote(remote);
  return std::nullopt;
}

struct ConnectorOptions {
  // Per attempt; more than 0. A huge one means "no limit but the retry deadline" (it saturates).
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  int max_rebinds = 64;         // immediate port changes per round, before waiting instead; 0 or more
  bool blocking_result = true;  // false: the returned socket stays non-blocking
  // Happy Eyeballs (RFC 8305), when a name has several addresses: a new attempt starts every
  // attempt_delay while the earlier ones are still in flight (at once when one fails); the first
  // to connect wins and the others are closed. 0: one address after another. The RFC's
  // recommendation is 250 ms (100 ms at least); below 10 ms is refused.
  std::chrono::milliseconds attempt_delay = std::chrono::milliseconds(250);
  // When the IPv4 answer comes before the IPv6 one, how long to wait for it before connecting
  // over IPv4 (RFC 8305: 50 ms). A resolver that is asked one family after the other (not a
  // BothFamiliesResolver) never needs it.
  std::chrono::milliseconds resolution_delay = std::chrono::milliseconds(50);
  Timer* timer = nullptr;  // the race's clock; nullptr: the system's (tests: a ManualTimer)
};

// invalid_argument naming the first option that means nothing.
inline expected<void, NetError> check(const ConnectorOptions& o) {
  if (auto e = check_duration("ConnectorOptions::connect_timeout", o.connect_timeout, false))
    return unexpected(std::move(*e));
  if (auto e = check_count("ConnectorOptions::max_rebinds", o.max_rebinds, "never rebind"))
    return unexpected(std::move(*e));
  if (o.attempt_delay != o.attempt_delay.zero() && o.attempt_delay < std::chrono::milliseconds(10))
    return unexpected(invalid_option("ConnectorOptions::attempt_delay",
                                     "is " + std::to_string(o.attempt_delay.count()) +
                                         " ms: it must be 0 (no race) or 10 ms or more (RFC 8305 recommends 250 ms)"));
  if (auto e = check_duration("ConnectorOptions::resolution_delay", o.resolution_delay, true))
    return unexpected(std::move(*e));
  return {};
}

// A policy may say that its options mean nothing: `expected<void, NetError> check() const`.
// Optional, so a check() of another shape, or one spelled nearly so, would silently never be
// called: either is a compile error that names the hook.
template <class Policy>
concept HasCheckHook = requires(const Policy& policy) {
  { policy.check() } -> std::same_as<expected<void, NetError>>;
};
template <class Policy>
std::optional<NetError> policy_problem(const Policy& policy) {
  static_assert(
      HasCheckHook<Policy> || !requires { &Policy::check; },
      "connpolicy: the optional hook 'check' of this policy has the wrong shape and would never be "
      "called: declare it `expected<void, NetError> check() const`");
  static_assert(HasCheckHook<Policy> || !(
                                            requires { &Policy::Check; } || requires { &Policy::chek; } ||
                                            requires { &Policy::checks; } || requires { &Policy::check_options; }),
                "connpolicy: this policy has a member named nearly like the optional hook 'check', which the "
                "connector would never call: spell it `expected<void, NetError> check() const`");
  if constexpr (HasCheckHook<Policy>) {
    if (auto ok = policy.check(); !ok) return std::move(ok).error();
  }
  return std::nullopt;
}

}  // namespace connpolicy
