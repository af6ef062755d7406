// Resolvers: a host name's addresses, asked for one family at a time (Happy Eyeballs asks for
// AAAA and A apart). The blocking Connector asks one when it connects to a HostPort.
//
// Use SystemResolver (getaddrinfo) in programs, connpolicy.testing's FakeResolver in tests, or a
// resolver of your own (a cache, c-ares, a service registry) that meets the Resolver concept.
// One that also meets BothFamiliesResolver has AAAA and A asked at once, and the connect starts
// as soon as RFC 8305 allows (IPv6 at once, IPv4 after the 50 ms resolution delay).
module;
#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <vector>
export module connpolicy.core:resolver;
import :error;
import :endpoint;
import :host_port;
import :net_error;
import :time;

export namespace connpolicy {

// Answers within `limit` and soon after `stop` fires, never later: a connect must not hang on a
// slow name server past its deadline. An empty answer is not an error: the name has no address
// of that family. Failures use Step::resolve (Errc::host_not_found, try_again, timed_out,
// cancelled ...).
template <class R>
concept Resolver =
    requires(R& resolver, const HostPort& name, Family family, std::chrono::milliseconds limit, std::stop_token stop) {
      { resolver.resolve(name, family, limit, stop) } -> std::same_as<expected<std::vector<Endpoint>, NetError>>;
    };

// One family's answer to a lookup asked for both.
struct FamilyAnswer {
  Family family;
  expected<std::vector<Endpoint>, NetError> result;
};

// Both families' lookups, asked at once. next(until): the next answer to come in, as soon as it
// does, or nullopt when `until` (on the Timer the connect runs on) passes first or a stop is
// requested. Each family is answered exactly once; one that gets no answer within the limit the
// lookup was started with is answered with a timeout (Errc::timed_out, Step::resolve).
template <class L>
concept LookupsInFlight = requires(L& lookups, Timer::time_point until) {
  { lookups.next(until) } -> std::same_as<std::optional<FamilyAnswer>>;
};

// A resolver that can ask for AAAA and A at once (each within `limit`, both ending soon after
// `stop`).
template <class R>
concept BothFamiliesResolver =
    Resolver<R> && requires(R& resolver, const HostPort& name, std::chrono::milliseconds limit, std::stop_token stop) {
      { resolver.resolve_both(name, limit, stop) } -> LookupsInFlight;
    };

// SystemResolver's two lookups in flight (their helper threads end on their own).
class SystemLookups {
 public:
  struct Shared;
  SystemLookups(std::shared_ptr<Shared> shared, HostPort name, std::chrono::milliseconds limit, std::stop_token stop);
  // `until` on the steady clock (the system Timer's).
  std::optional<FamilyAnswer> next(Timer::time_point until);

 private:
  std::shared_ptr<Shared> shared_;
  HostPort name_;
  std::chrono::milliseconds limit_;
  Timer::time_point deadline_;
  std::stop_token stop_;
  bool given_[2] = {false, false};  // [0] IPv6, [1] IPv4
};

// getaddrinfo, bounded in time and in threads. Each lookup runs on a helper thread and the caller
// waits at most `limit` (or until `stop`). What a pending lookup holds: one helper thread, and
// inside getaddrinfo one UDP socket, until the name server answers or glibc gives up on its own
// (resolv.conf's timeout x attempts: 5 s x 2 by default), even after its caller has given up.
// Two bounds keep a silent name server from costing a thread per connect:
// - lookups of the same name and family at the same time share one getaddrinfo call and its
//   answer (a storm of connects to one name, or a retry while the last round's lookup is still
//   out, costs one thread per family);
// - at most helper_threads().limit threads run in the process (default_helper_threads unless
//   set_helper_thread_limit says otherwise); a lookup that finds them all busy waits in line
//   within its own limit, and one whose callers all gave up before it started is never asked.
//   A lookup that ran out of time in line says so ("the lookup never started: all 8 helper
//   threads were waiting ..."): Errc::timed_out at Step::resolve, retried as try_again.
// Addresses come in getaddrinfo's order (RFC 6724's), without duplicates.
struct SystemResolver {
  static constexpr std::size_t default_helper_threads = 8;
  struct HelperThreadUse {
    std::size_t running;  // threads in getaddrinfo (or about to take the next lookup in line)
    std::size_t peak;     // the most that ran at once since the program started
    std::size_t limit;
    std::size_t waiting;  // lookups in line for a thread, some caller still waiting for each
    std::size_t joined;   // lookups that shared one already in flight, since the program started
  };
  // For a health page or a test: the process's helper threads now.
  static HelperThreadUse helper_threads();
  // The most helper threads that may run at once in this process (at least 1). Use when many
  // distinct names are looked up at once and the name servers are slow; a raised limit starts
  // threads for lookups in line at once, a lowered one takes effect as threads finish.
  static void set_helper_thread_limit(std::size_t limit);

  expected<std::vector<Endpoint>, NetError> resolve(const HostPort& name, Family family,
                                                    std::chrono::milliseconds limit, std::stop_token stop) const;
  // AAAA and A, each on its own helper thread, at once. `on_answer`, when given, is called on
  // that thread as each answer comes (an event loop's wake-up; it must not block).
  SystemLookups resolve_both(const HostPort& name, std::chrono::milliseconds limit, std::stop_token stop,
                             std::function<void()> on_answer = {}) const;
};

}  // namespace connpolicy
