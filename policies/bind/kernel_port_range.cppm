// KernelPortRange: no bind(); the kernel picks the port at connect(), but only from this range
// (IP_LOCAL_PORT_RANGE, Linux >= 6.3), per socket, without touching the system-wide sysctl.
//
// Use when: a firewall admits a range of source ports and you want the kernel's port sharing
// per destination (which a fixed-port rotation does not have).
//
// Never silently wider: the kernel honours the option only within the system's ephemeral range
// (net.ipv4.ip_local_port_range) and ignores it otherwise, picking any port of the system range.
// So the first plan() reads the system range and sets the overlap of the two; a range that does
// not overlap it is refused (invalid_argument, naming both ranges) before any socket is made. On
// kernels without the option the attempt fails at set_option with a clear error; off Linux there
// is no system range to read, and plan() says so.
module;
#include <atomic>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
export module connpolicy.bind:kernel_port_range;
import connpolicy.core;
import connpolicy.diag;
import :plan;

export namespace connpolicy {

class KernelPortRange {
 public:
  static constexpr bool can_rebind = false;

  // The system range is read (ephemeral_port_range()) on the first plan() that needs it.
  constexpr explicit KernelPortRange(PortRange range) noexcept : range_(range) {}
  // The system range given instead of read: for tests, or a namespace whose range you know.
  constexpr KernelPortRange(PortRange range, PortRange system_range) noexcept
      : range_(range), system_range_(system_range) {}
  KernelPortRange(const KernelPortRange& other) noexcept
      : range_(other.range_), system_range_(other.system_range_), usable_(other.usable_.load()) {}
  KernelPortRange& operator=(const KernelPortRange& other) noexcept {
    range_ = other.range_;
    system_range_ = other.system_range_;
    usable_.store(other.usable_.load());
    return *this;
  }

  expected<BindPlan, NetError> plan(const Endpoint&) const {
    std::uint32_t value = usable_.load(std::memory_order_relaxed);
    if (value == 0) {  // not known yet (0 is no range: a PortRange starts at port 1)
      auto usable = usable_range();
      if (!usable) return unexpected(std::move(usable).error());
      value = std::uint32_t{usable->last()} << 16 | usable->first();
      usable_.store(value, std::memory_order_relaxed);
    }
    BindPlan plan;  // set at level IPPROTO_IP, which works on IPv6 sockets too
    plan.add({SocketOption::local_port_range, static_cast<int>(value), true});
    return plan;
  }
  void failed(const BindPlan&, const NetError&) const noexcept {}

  // The range asked for, and the part of it the kernel will use (its overlap with the system's
  // range), or why there is none.
  constexpr const PortRange& range() const noexcept { return range_; }
  expected<PortRange, NetError> usable_range() const {
    auto system = system_range_ ? expected<PortRange, NetError>(*system_range_) : ephemeral_port_range();
    if (!system)
      return unexpected(
          NetError(Step::configure, LibraryError::invalid_port_range,
                   "KernelPortRange " + range_.to_string() +
                       ": cannot check it against the system's ephemeral range: " + system.error().message()));
    const long first = std::max(range_.first(), system->first()), last = std::min(range_.last(), system->last());
    if (first > last)
      return unexpected(NetError(Step::configure, LibraryError::invalid_port_range,
                                 "KernelPortRange " + range_.to_string() +
                                     " lies outside the system's ephemeral range " + system->to_string() +
                                     " (net.ipv4.ip_local_port_range), so the kernel would ignore it and pick "
                                     "any port of the system's range; choose ports inside it, or widen the sysctl"));
    return PortRange::make(first, last);
  }

 private:
  PortRange range_;
  std::optional<PortRange> system_range_;
  mutable std::atomic<std::uint32_t> usable_{0};  // last << 16 | first, once known; 0: not yet
};

}  // namespace connpolicy
