module;
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>
module connpolicy.bind;
import connpolicy.core;

namespace connpolicy::detail::rotation {
namespace {
std::string seconds_text(std::chrono::milliseconds d) {
  const auto tenths = (d.count() + 50) / 100;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}
}  // namespace

std::string_view describe(Rest why) noexcept {
  switch (why) {
    case Rest::none: return "";
    case Rest::assumed_time_wait: return "assumed TIME_WAIT";
    case Rest::kernel_time_wait: return "the kernel's TIME_WAIT timer";
    case Rest::time_wait_unknown_end: return "in TIME_WAIT, and the system does not say for how long";
    case Rest::other_socket: return "held by another socket";
    case Rest::busy_failure: return "failed for being busy";
    case Rest::given: return "the cooldown you set";
  }
  return "";
}

bool port_is_at_fault(const NetError& error) noexcept {
  switch (error.condition()) {
    case Errc::local_port_busy:
    case Errc::local_ports_exhausted:  // Windows 10048 at connect without our port known
      return true;
    case Errc::permission_denied:  // e.g. Windows' excluded port ranges (10013): another port may do
      return error.step() == Step::bind;
    // address_not_available (at bind: the source *address* is not on this host; at connect it is
    // refined to busy or exhausted) blames no port, and no port rests for it.
    default: return false;
  }
}

NetError all_ports_unavailable(std::span<const Slot> slots, const FreeList& free, const PortRange& range,
                               Timer::time_point now, const std::string& census_problem) {
  NetError error(Step::bind, LibraryError::all_ports_cooling);
  std::string detail = "all " + std::to_string(range.size()) + " ports of " + range.to_string() + " are ";
  if (free.empty()) {
    detail += "held by open sockets";
    return std::move(error).with_detail(std::move(detail));
  }
  const auto first_free = std::ranges::min(free, {}, [&](std::size_t i) { return slots[i].ready_at; });
  const Slot& slot = slots[first_free];
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(slot.ready_at - now);
  const std::size_t in_use = range.size() - free.size();
  detail += "cooling down after a close (TIME_WAIT) or a busy failure";
  if (in_use > 0) detail += ", or lent to open sockets (" + std::to_string(in_use) + ")";
  const bool looked_at_again = slot.rest == Rest::time_wait_unknown_end || slot.rest == Rest::other_socket;
  detail += "; port " + std::to_string(slot.port) + (looked_at_again ? " is looked at again in " : " frees in ") +
            seconds_text(wait);
  if (slot.rest != Rest::none) detail += " (" + std::string(describe(slot.rest)) + ")";
  if (!census_problem.empty()) detail += "; the kernel census failed: " + census_problem;
  // A lent port comes back when its socket closes, at a time nobody knows and often soon: then no
  // wait to the end of a TIME_WAIT is promised (the retry policy's own pace applies); a look
  // again (a second at most) still is.
  if (in_use > 0 && !looked_at_again)
    return std::move(error).with_detail(std::move(detail) + "; a lent port may come back sooner");
  return std::move(error).with_detail(std::move(detail)).with_retry_after(wait);
}

}  // namespace connpolicy::detail::rotation
