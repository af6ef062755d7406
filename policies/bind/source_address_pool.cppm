// SourceAddressPool: spreads connections over several local addresses, each with a port the
// kernel picks (port 0 with IP_BIND_ADDRESS_NO_PORT where the kernel has it).
//
// Use when: one client needs more concurrent connections to ONE server than one source address
// allows. A TCP connection is a 4-tuple; towards one destination a single source address has at
// most as many connections as the ephemeral range has ports (28 232 by default on Linux). N
// addresses give N times as many. Connections go round the pool in turn; copies share the turn.
module;
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>
export module connpolicy.bind:source_address_pool;
import connpolicy.core;
import :plan;

export namespace connpolicy {

class SourceAddressPool {
 public:
  // A retry goes to the next address, which may still have ports when this one ran out.
  static constexpr bool can_rebind = true;

  // The addresses' ports are ignored. invalid_argument when the list is empty, or holds an address
  // no TCP socket can be bound to (multicast, broadcast: in any form, ::ffff:224.0.0.1 too). An
  // address that is not on this host is found at bind (address_not_available, at once).
  static expected<SourceAddressPool, NetError> make(std::vector<Endpoint> addresses) {
    if (addresses.empty())
      return unexpected(NetError(Step::bind, LibraryError::invalid_endpoint, "SourceAddressPool: no address given"));
    for (Endpoint& a : addresses) {
      if (a.is_multicast() || a.is_broadcast())
        return unexpected(NetError(Step::bind, LibraryError::invalid_endpoint,
                                   "SourceAddressPool: " + a.address_string() +
                                       " is a multicast or broadcast address, not a TCP source address")
                              .with_local(a));
      a = a.with_port(0);
    }
    return SourceAddressPool(std::move(addresses));
  }

  expected<BindPlan, NetError> plan(const Endpoint& remote) const {
    const std::size_t n = addresses_->size();
    const std::size_t first = next_->fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {  // the next address of the remote's family
      const Endpoint& source = (*addresses_)[(first + i) % n];
      if (source.family() != remote.family()) continue;
      BindPlan plan;
      plan.local = source;
      plan.add({SocketOption::bind_address_no_port, 1, /*required=*/false});
      return plan;
    }
    return unexpected(NetError(Step::bind, make_system_error(EAFNOSUPPORT))
                          .with_remote(remote)
                          .with_detail("SourceAddressPool has no address of the remote's family"));
  }
  void failed(const BindPlan&, const NetError&) const noexcept {}

  const std::vector<Endpoint>& addresses() const noexcept { return *addresses_; }

 private:
  explicit SourceAddressPool(std::vector<Endpoint> addresses)
      : addresses_(std::make_shared<const std::vector<Endpoint>>(std::move(addresses))),
        next_(std::make_shared<std::atomic<std::size_t>>(0)) {}
  std::shared_ptr<const std::vector<Endpoint>> addresses_;
  std::shared_ptr<std::atomic<std::size_t>> next_;
};

}  // namespace connpolicy
