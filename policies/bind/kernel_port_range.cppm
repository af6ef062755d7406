// KernelPortRange: no bind(); the kernel picks the port at connect(), but only from this range
// (IP_LOCAL_PORT_RANGE, Linux >= 6.3), per socket, without touching the system-wide sysctl.
//
// Use when: a firewall admits a range of source ports and you want the kernel's port sharing
// per destination (which a fixed-port rotation does not have). The range is intersected with
// the system's ephemeral range (net.ipv4.ip_local_port_range): choose it inside. On kernels
// without the option the attempt fails at set_option with a clear error (never silently wider).
module;
#include <memory>
export module connpolicy.bind:kernel_port_range;
import connpolicy.core;
import :plan;

export namespace connpolicy {

class KernelPortRange {
 public:
  static constexpr bool can_rebind = false;

  constexpr explicit KernelPortRange(PortRange range) noexcept : range_(range) {}

  expected<BindPlan, NetError> plan(const Endpoint&) const noexcept {
    BindPlan plan;  // set at level IPPROTO_IP, which works on IPv6 sockets too
    plan.add({SocketOption::local_port_range, static_cast<int>(range_.last()) << 16 | range_.first(), true});
    return plan;
  }
  void failed(const BindPlan&, const NetError&) const noexcept {}

  constexpr const PortRange& range() const noexcept { return range_; }

 private:
  PortRange range_;
};

}  // namespace connpolicy
