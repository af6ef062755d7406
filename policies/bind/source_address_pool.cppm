// SourceAddressPool: spreads connections over several local addresses, each with a port the
// kernel picks (port 0 with IP_BIND_ADDRESS_NO_PORT where the kernel has it).
//
// Use when: one client needs more concurrent connections to ONE server than one source address
// allows. A TCP connection is a 4-tuple; towards one destination a single source address has at
// most as many connections as the ephemeral range has ports (28 232 by default on Linux). N
// addresses give N times as many. Connections go round the pool in turn; copies share the turn.
//
// An address that is not on this host (a DHCP lease changed, an interface went down) fails its
// bind with address_not_available: the pool rests it for SourcePoolOptions::unavailable_rest and
// offers the next address at once (the error policy rebinds: Failure::can_change_address), then
// tries it again after the rest, not never. A connect fails only when every address of the
// remote's family has failed, and its error names each address and when it may be tried again.
module;
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
export module connpolicy.bind:source_address_pool;
import connpolicy.core;
import :plan;

export namespace connpolicy {

struct SourcePoolOptions {
  // How long an address whose bind said "not on this host" is skipped. Short, because trying it
  // again costs one failed bind and the next address is taken at once; long enough that a pool
  // with a missing address does not spend a bind on it in every connect. 0 or more.
  std::chrono::milliseconds unavailable_rest = std::chrono::seconds(10);
};

class SourceAddressPool {
 public:
  // A retry goes to the next address, which may still have ports when this one ran out.
  static constexpr bool can_rebind = true;
  // An address not on this host is skipped for the next one at once (see above).
  static constexpr bool can_change_address = true;

  // The addresses' ports are ignored. invalid_argument when the list is empty, or holds an address
  // no TCP socket can be bound to (multicast, broadcast: in any form, ::ffff:224.0.0.1 too). An
  // address that is not on this host is found at bind (address_not_available, at once).
  static expected<SourceAddressPool, NetError> make(std::vector<Endpoint> addresses, SourcePoolOptions options = {}) {
    if (options.unavailable_rest < std::chrono::milliseconds::zero())
      return unexpected(NetError(Step::bind, LibraryError::invalid_option,
                                 "SourcePoolOptions::unavailable_rest is negative; 0 tries every address each time"));
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
    return SourceAddressPool(std::move(addresses), options);
  }

  expected<BindPlan, NetError> plan(const Endpoint& remote) const {
    const std::size_t n = state_->addresses.size();
    const std::size_t first = state_->next.fetch_add(1, std::memory_order_relaxed);
    const Timer::time_point now = state_->now();
    bool any_of_family = false;
    std::lock_guard lock(state_->mutex);
    for (std::size_t i = 0; i < n; ++i) {  // the next address of the remote's family, not resting
      const std::size_t at = (first + i) % n;
      const Endpoint& source = state_->addresses[at];
      if (source.family() != remote.family()) continue;
      any_of_family = true;
      if (state_->resting_until[at] > now) continue;
      BindPlan plan;
      plan.local = source;
      plan.add({SocketOption::bind_address_no_port, 1, /*required=*/false});
      return plan;
    }
    if (!any_of_family)
      return unexpected(NetError(Step::bind, make_system_error(EAFNOSUPPORT))
                            .with_remote(remote)
                            .with_detail("SourceAddressPool has no address of the remote's family"));
    return unexpected(every_address_resting(remote, now));
  }
  // A bind that said "not on this host" rests that address.
  void failed(const BindPlan& plan, const NetError& error) const noexcept {
    if (!plan.local || error.step() != Step::bind || error.condition() != Errc::address_not_available) return;
    const auto at = std::ranges::find(state_->addresses, *plan.local) - state_->addresses.begin();
    if (static_cast<std::size_t>(at) >= state_->addresses.size()) return;
    std::lock_guard lock(state_->mutex);
    state_->resting_until[at] = saturating_add(state_->now(), state_->options.unavailable_rest);
  }

  const std::vector<Endpoint>& addresses() const noexcept { return state_->addresses; }
  // How time passes for the rests: a Connector hands it its one clock (ConnectorOptions::timer)
  // when it is made; the system's until then. Copies share it.
  void use_clock(Timer& clock) const noexcept { state_->clock.store(&clock, std::memory_order_relaxed); }

 private:
  struct State {
    std::vector<Endpoint> addresses;
    SourcePoolOptions options;
    std::atomic<std::size_t> next{0};
    std::mutex mutex;
    std::vector<Timer::time_point> resting_until;  // per address; past: offered
    std::atomic<Timer*> clock{&system_timer()};
    Timer::time_point now() const noexcept { return clock.load(std::memory_order_relaxed)->now(); }
  };
  SourceAddressPool(std::vector<Endpoint> addresses, SourcePoolOptions options) : state_(std::make_shared<State>()) {
    state_->resting_until.resize(addresses.size());
    state_->addresses = std::move(addresses);
    state_->options = options;
  }

  // Every address of `remote`'s family is resting: address_not_available, naming each and when
  // it is tried again. Call with the mutex held.
  NetError every_address_resting(const Endpoint& remote, Timer::time_point now) const {
    std::string each;
    auto soonest = Timer::duration::max();
    for (std::size_t i = 0; i < state_->addresses.size(); ++i) {
      if (state_->addresses[i].family() != remote.family()) continue;
      const auto left = state_->resting_until[i] - now;
      soonest = std::min(soonest, left);
      each += (each.empty() ? "" : ", ") + state_->addresses[i].address_string() +
              " (not on this host; tried again in " +
              std::to_string(std::chrono::ceil<std::chrono::milliseconds>(left).count()) + " ms)";
    }
    return NetError(Step::bind, make_system_error(EADDRNOTAVAIL))
        .with_remote(remote)
        .with_retry_after(std::chrono::ceil<std::chrono::milliseconds>(soonest))
        .with_detail("SourceAddressPool: no address of the remote's family is on this host: " + each +
                     "; check the host's addresses (ip addr) or the pool");
  }

  std::shared_ptr<State> state_;
};

}  // namespace connpolicy
