// FixedPortRotation's ring: one slot per port, and the free ones in a list threaded through the
// slots, least recently released first. Plain data and functions, no lock and no clock of their
// own: FixedPortRotation holds its mutex around them, and unit tests drive them directly.
// Exported for those tests only (namespace detail::rotation): not an API to build on.
module;
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
export module connpolicy.bind:rotation_slots;
import connpolicy.core;

export namespace connpolicy::detail::rotation {

// Why a port rests: what the error says when every port is unavailable.
enum class Rest : std::uint8_t {
  none,
  assumed_time_wait,
  kernel_time_wait,
  time_wait_unknown_end,
  other_socket,
  busy_failure,
  given,
};
std::string_view describe(Rest why) noexcept;

inline constexpr std::size_t npos = static_cast<std::size_t>(-1);

// A slot that needs no rest: ready whatever the clock says, without reading it (a reset close or a
// refused attempt puts its port back on every cycle; a clock read is ~40 instructions).
inline constexpr Timer::time_point ready_now = Timer::time_point::min();

struct Slot {
  std::uint16_t port = 0;
  bool in_use = false;
  bool guessed = false;  // ready_at assumes how long the kernel holds the port: ask the census
  Rest rest = Rest::none;
  std::uint64_t released = 0;  // the ring's release count when it last came back: newer than a census?
  Timer::time_point ready_at{};
  // Its last connection's two ends, when known: the rest can then be checked with a look_up of that
  // one connection instead of a survey. Written only while in_use, read only when free.
  std::optional<Endpoint> remote, local;
  bool look_up_ok = false;               // the rest came from our own close (or a look_up of it): ask about the pair
  std::size_t prev = npos, next = npos;  // neighbours in the free list while not in use
};

// The free slots, least recently released first. Taking a port from the middle or putting one back
// moves nothing and allocates nothing (a deque did both, and cost more than the rest of plan()).
class FreeList {
 public:
  explicit FreeList(std::vector<Slot>& slots) noexcept : slots_(&slots) {}
  struct iterator {
    const std::vector<Slot>* slots;
    std::size_t at;
    // `inline` throughout: in a module interface a member defined in its class is not implicitly
    // inline, and plan() walks this list on every connect (callgrind: +360 instructions a cycle).
    inline std::size_t operator*() const noexcept { return at; }
    inline iterator& operator++() noexcept {
      at = (*slots)[at].next;
      return *this;
    }
    inline iterator operator++(int) noexcept {
      auto old = *this;
      ++*this;
      return old;
    }
    inline bool operator==(const iterator& other) const noexcept { return at == other.at; }
    using iterator_concept = std::forward_iterator_tag;
    using value_type = std::size_t;
    using difference_type = std::ptrdiff_t;
  };
  inline iterator begin() const noexcept { return {slots_, head_}; }
  inline iterator end() const noexcept { return {slots_, npos}; }
  inline bool empty() const noexcept { return size_ == 0; }
  inline std::size_t size() const noexcept { return size_; }
  inline void push_back(std::size_t i) noexcept {
    Slot& slot = (*slots_)[i];
    slot.prev = tail_;
    slot.next = npos;
    (tail_ == npos ? head_ : (*slots_)[tail_].next) = i;
    tail_ = i;
    ++size_;
  }
  inline void erase(std::size_t i) noexcept {
    Slot& slot = (*slots_)[i];
    (slot.prev == npos ? head_ : (*slots_)[slot.prev].next) = slot.next;
    (slot.next == npos ? tail_ : (*slots_)[slot.next].prev) = slot.prev;
    slot.prev = slot.next = npos;
    --size_;
  }

 private:
  std::vector<Slot>* slots_;
  std::size_t head_ = npos, tail_ = npos, size_ = 0;
};

// A failure that says the port itself cannot be used now, as opposed to the peer refusing or the
// source address being wrong: the port rests, and the next attempt takes another.
bool port_is_at_fault(const NetError& error) noexcept;

// The error's detail when plan() finds no ready port: how many are cooling or in use, which frees
// first and when, and why it rests; the retry_after() is that wait.
NetError all_ports_unavailable(std::span<const Slot> slots, const FreeList& free, const PortRange& range,
                               Timer::time_point now, const std::string& census_problem);

}  // namespace connpolicy::detail::rotation
