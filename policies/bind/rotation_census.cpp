module;
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>
module connpolicy.bind;
import connpolicy.core;
import connpolicy.diag;

namespace connpolicy::detail::rotation {

std::optional<Hold> hold_of(const PortUse& use, Timer::time_point now, std::chrono::milliseconds slack,
                            bool time_wait_reusable) noexcept {
  if (use.state != TcpState::time_wait) return Hold{now + recheck_held, true, Rest::other_socket};
  if (time_wait_reusable) return std::nullopt;
  if (use.time_wait_left) return Hold{now + *use.time_wait_left + slack, false, Rest::kernel_time_wait};
  return Hold{now + recheck_held, true, Rest::time_wait_unknown_end};
}

PortCensus* default_census() noexcept {
#if defined(__linux__) || defined(_WIN32)
  return &kernel_census();
#else
  return nullptr;
#endif
}

bool overlaps(const Endpoint& a, const Endpoint& b) noexcept {
  if (a.is_unspecified() || b.is_unspecified()) return true;
  return a.unmapped().with_port(0) == b.unmapped().with_port(0);  // a dual-stack socket reports ::ffff:a.b.c.d
}

void apply_survey(std::span<Slot> slots, const Answer& answer, const PortRange& range, const Endpoint& source) {
  std::vector<std::optional<Hold>> holds(slots.size());
  for (const PortUse& use : answer.census.uses) {
    if (!range.contains(use.local.port()) || !overlaps(use.local, source)) continue;
    const auto hold = hold_of(use, answer.now, answer.census.time_wait_slack, answer.time_wait_reusable);
    if (!hold) continue;
    auto& h = holds[use.local.port() - range.first()];
    if (!h || hold->until > h->until) h = hold;
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Slot& slot = slots[i];
    if (slot.in_use) continue;                   // ours: the census sees our own live socket
    if (slot.released > answer.as_of) continue;  // came back while the census ran
    const auto& hold = holds[i];
    if (!hold) {
      if (slot.guessed && slot.rest == Rest::busy_failure) {
        // A bind failed here, yet the census shows nothing: a socket it cannot see holds the port
        // (one that is only bound is not in /proc/net/tcp, nor in netlink's dump before recent
        // kernels, nor in Windows' table as Wine builds it). Keep the rest the failure earned;
        // binding decides again when it ends.
        slot.guessed = false;
      } else if (slot.guessed) {  // the kernel holds nothing there: free now
        slot.ready_at = answer.now;
        slot.guessed = false;
        slot.rest = Rest::none;
      }
    } else if (slot.guessed || hold->until > slot.ready_at) {
      slot.ready_at = hold->until;
      slot.guessed = hold->guessed;
      slot.rest = hold->why;
      slot.look_up_ok = false;  // maybe another program's socket: only a survey sees it go
    }
  }
}

void apply_look_up(std::span<Slot> slots, const Answer& answer, std::span<const std::size_t> asked) {
  for (std::size_t i : asked) {
    Slot& slot = slots[i];
    if (slot.in_use || slot.released > answer.as_of) continue;  // taken or back again meanwhile
    const auto use = std::ranges::find_if(answer.census.uses, [&](const PortUse& u) {
      return same_end(u.local, *slot.local) && same_end(u.remote, *slot.remote);
    });
    const auto hold = use == answer.census.uses.end()
                          ? std::nullopt
                          : hold_of(*use, answer.now, answer.census.time_wait_slack, answer.time_wait_reusable);
    slot.ready_at = hold ? hold->until : answer.now;
    slot.guessed = hold && hold->guessed;
    slot.rest = hold ? hold->why : Rest::none;
  }
}

std::vector<std::size_t> guessed_to_look_up(std::span<const Slot> slots, const FreeList& free) {
  std::vector<std::size_t> asked;
  for (std::size_t i : free) {
    const Slot& slot = slots[i];
    if (!slot.guessed) continue;
    if (!slot.look_up_ok) return {};
    asked.push_back(i);
  }
  return asked;
}

}  // namespace connpolicy::detail::rotation
