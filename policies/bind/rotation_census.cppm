// Reconciling a census answer with FixedPortRotation's ring: plain functions over (slots, answer,
// now), called with the rotation's mutex held, and by unit tests without threads. Exported for
// those tests only (namespace detail::rotation): not an API to build on.
module;
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>
export module connpolicy.bind:rotation_census;
import connpolicy.core;
import connpolicy.diag;
import :rotation_slots;

export namespace connpolicy::detail::rotation {

// A port another socket holds (not TIME_WAIT), or a TIME_WAIT whose end the system does not tell
// (Windows), is looked at again after this.
inline constexpr std::chrono::milliseconds recheck_held{1000};

// How long one socket the census reports keeps its port from us: a TIME_WAIT with its time left
// exactly (plus the timer's slack); one without (Windows) or another state (another program, a
// close under way) until a second look. Empty: it does not hold the port (a TIME_WAIT that
// SO_REUSEADDR binds through: `time_wait_reusable`). The one reading of a census answer.
struct Hold {
  Timer::time_point until;
  bool guessed;
  Rest why;
};
std::optional<Hold> hold_of(const PortUse& use, Timer::time_point now, std::chrono::milliseconds slack,
                            bool time_wait_reusable) noexcept;

// The kernel's census where there is one: Linux, and Windows (whose table lists TIME_WAITs without
// their time left: such a port is looked at again every recheck_held). nullptr elsewhere.
PortCensus* default_census() noexcept;

// Two local addresses that cannot both bind one port: equal, or one of them any-address.
bool overlaps(const Endpoint& a, const Endpoint& b) noexcept;

// What the census is asked and when the answer came back. Slots released after `as_of` (their
// `released` count is higher) came back while the census ran: it may predate their TIME_WAIT, so
// they keep their memory.
struct Answer {
  const Census& census;
  Timer::time_point now;
  std::uint64_t as_of;
  bool time_wait_reusable;
};

// A survey's answer for every free slot of `range` bound on `source`.
void apply_survey(std::span<Slot> slots, const Answer& answer, const PortRange& range, const Endpoint& source);

// A look_up's answer for the `asked` slots only: its connection's hold, or free now when the kernel
// no longer has that connection.
void apply_look_up(std::span<Slot> slots, const Answer& answer, std::span<const std::size_t> asked);

// The slots whose rests a look_up can check: every free slot whose rest is a guess, if each of them
// knows its last connection; else none (a survey is needed). All of them, as a survey would, not
// just the one about to be offered: a guess left unasked runs out a moment later, when the census
// was just taken, and its port would be offered unchecked into a TIME_WAIT.
std::vector<std::size_t> guessed_to_look_up(std::span<const Slot> slots, const FreeList& free);

}  // namespace connpolicy::detail::rotation
