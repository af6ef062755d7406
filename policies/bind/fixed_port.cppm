// FixedPort: always the same local port. The seed's original behaviour.
//
// Use when: the server recognises a client by its source port (the seed's login server refuses
// a second login from a new port). Know the cost: after this client closes a connection, the port
// sits in TIME_WAIT (60 s on Linux, 120-240 s on Windows) and the next bind() fails with
// local_port_busy (EADDRINUSE / 10048) — exactly the seed's bug.
//
// reuse_address (SO_REUSEADDR) lets the bind succeed while the old connection is in TIME_WAIT.
// On Linux the reconnect to the same server then works at once when TCP timestamps are on (the
// default; without them connect() fails with EADDRNOTAVAIL), and two *live* sockets still cannot
// share the port. Trade-off: a late segment of the old connection could in theory reach the new
// one (timestamps/PAWS guard against it). On Windows SO_REUSEADDR means much more: another
// socket can take over a port that is in use; so without reuse_address, FixedPort sets
// SO_EXCLUSIVEADDRUSE there (see claim_port), and with it the port is open to such a takeover.
module;
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
export module connpolicy.bind:fixed_port;
import connpolicy.core;
import :plan;

namespace connpolicy::detail {
inline void fixed_port_must_be_1_to_65535() {}  // not constexpr: reaching it is the compile error
}  // namespace connpolicy::detail

export namespace connpolicy {

struct FixedPortOptions {
  bool reuse_address = false;      // SO_REUSEADDR: bind through TIME_WAIT (see above)
  std::optional<Endpoint> source;  // local address (its port is ignored); empty: any
};

class FixedPort {
 public:
  static constexpr bool can_rebind = false;

  // FixedPort{40000}: checked at compile time (FixedPort{0} does not compile).
  consteval FixedPort(int port, FixedPortOptions options = {}) : port_(0), options_(options) {
    if (!is_port_number(port)) detail::fixed_port_must_be_1_to_65535();
    port_ = static_cast<std::uint16_t>(port);
  }
  // A port known only at run time: invalid_argument unless 1-65535.
  static expected<FixedPort, NetError> make(long port, FixedPortOptions options = {}) {
    if (!is_port_number(port))
      return unexpected(NetError(Step::bind, LibraryError::invalid_port_range,
                                 "FixedPort " + std::to_string(port) + ": ports are 1-65535"));
    return FixedPort(static_cast<std::uint16_t>(port), options);
  }

  expected<BindPlan, NetError> plan(const Endpoint& remote) const {
    BindPlan plan;
    plan.local = options_.source ? options_.source->with_port(port_) : any_address_for(remote, port_);
    claim_port(plan, options_.reuse_address);
    return plan;
  }
  void failed(const BindPlan&, const NetError&) const noexcept {}

  constexpr std::uint16_t port() const noexcept { return port_; }
  constexpr const FixedPortOptions& options() const noexcept { return options_; }

 private:
  FixedPort(std::uint16_t port, FixedPortOptions options) noexcept : port_(port), options_(options) {}
  std::uint16_t port_;
  FixedPortOptions options_;
};

}  // namespace connpolicy
