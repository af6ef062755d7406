// NoBind: no bind() at all; the kernel picks the local address and port at connect().
//
// Use when: nothing requires a particular local port. This is the seed's third case ("if you do
// not bind, retry connect()"), and the cheapest: 3 syscalls a cycle on Linux (socket, connect,
// close), and the kernel shares one local port across different destinations, so ports run out
// per destination, not in total.
module;
#include <memory>
export module connpolicy.bind:no_bind;
import connpolicy.core;
import :plan;

export namespace connpolicy {

struct NoBind {
  static constexpr bool can_rebind = false;
  expected<BindPlan, NetError> plan(const Endpoint&) const noexcept { return BindPlan{}; }
  void failed(const BindPlan&, const NetError&) const noexcept {}
};

}  // namespace connpolicy
