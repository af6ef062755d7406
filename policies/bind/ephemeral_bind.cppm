// EphemeralBind: bind port 0 (the kernel picks the port), optionally on a chosen source address.
//
// Use when: the connection must leave from a particular local address (a multi-homed host, a
// VPN, a source-address pool) but any port will do. This is the seed's first fix (bind port 0).
// Where the kernel has IP_BIND_ADDRESS_NO_PORT (Linux >= 4.2) the port is chosen at connect(),
// so ports are shared per destination as with NoBind; without it, bind(:0) must pick a port
// before the destination is known and every connection uses up a port of its own (measured:
// 100 connections from a 100-port range instead of 100 per destination).
module;
#include <cerrno>
#include <memory>
#include <optional>
export module connpolicy.bind:ephemeral_bind;
import connpolicy.core;
import :plan;

export namespace connpolicy {

class EphemeralBind {
 public:
  static constexpr bool can_rebind = false;

  // Any address of the remote's family.
  constexpr EphemeralBind() noexcept = default;
  // This address (its port is ignored: the kernel picks one).
  constexpr explicit EphemeralBind(const Endpoint& source) noexcept : source_(source.with_port(0)) {}

  expected<BindPlan, NetError> plan(const Endpoint& remote) const {
    if (source_ && source_->family() != remote.family())
      return unexpected(NetError(Step::bind, make_system_error(EAFNOSUPPORT))
                            .with_local(*source_)
                            .with_remote(remote)
                            .with_detail("the source address and the remote are of different families"));
    BindPlan plan;
    plan.local = source_ ? *source_ : any_address_for(remote);
    plan.add({SocketOption::bind_address_no_port, 1, /*required=*/false});
    return plan;
  }
  void failed(const BindPlan&, const NetError&) const noexcept {}

  constexpr const std::optional<Endpoint>& source() const noexcept { return source_; }

 private:
  std::optional<Endpoint> source_;
};

}  // namespace connpolicy
