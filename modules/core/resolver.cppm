// Resolvers: a host name's addresses, asked for one family at a time (Happy Eyeballs asks for
// AAAA and A apart). The blocking Connector asks one when it connects to a HostPort.
//
// Use SystemResolver (getaddrinfo) in programs, connpolicy.testing's FakeResolver in tests, or a
// resolver of your own (a cache, c-ares, a service registry) that meets the Resolver concept.
module;
#include <chrono>
#include <concepts>
#include <stop_token>
#include <vector>
export module connpolicy.core:resolver;
import :error;
import :endpoint;
import :host_port;
import :net_error;

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

// getaddrinfo, bounded: it runs on a helper thread, and the caller waits at most `limit` (or
// until `stop`). A lookup left behind finishes on its own and frees what it holds; until then
// it holds a thread, so a name server that never answers costs one thread per abandoned lookup.
// Addresses come in getaddrinfo's order (RFC 6724's), without duplicates.
struct SystemResolver {
  expected<std::vector<Endpoint>, NetError> resolve(const HostPort& name, Family family,
                                                    std::chrono::milliseconds limit, std::stop_token stop) const;
};

}  // namespace connpolicy
