// What a Happy Eyeballs race (RFC 8305) has to remember: the attempts in flight, when the last
// one started, which address comes next, and why each address failed this round. ConnectCore
// makes every decision; this keeps the books it decides from.
module;
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>
export module connpolicy.decision:race_book;
import connpolicy.core;
import :rare_list;
import connpolicy.bind;

export namespace connpolicy {

// How long one attempt's connect may wait, and whether the retry deadline (not the per-attempt
// timeout) is what bounds it.
struct AttemptTimeout {
  std::chrono::milliseconds limit;
  bool deadline_bound = false;
};

// The per-attempt timeout, or what is left until the retry deadline when that is sooner.
inline AttemptTimeout attempt_limit(std::chrono::milliseconds timeout, std::optional<Timer::duration> left) noexcept {
  if (left && std::chrono::ceil<std::chrono::milliseconds>(*left) < timeout)
    return {std::chrono::ceil<std::chrono::milliseconds>(*left), true};
  return {timeout};
}

// A name's addresses in the order to try them: IPv6 first, then the families alternate
// (RFC 8305, section 4), each family in the resolver's order.
std::vector<Endpoint> interleave_families(std::span<const Endpoint> v6, std::span<const Endpoint> v4);

namespace detail {

// One attempt in flight. `id` is what the driver knows it by.
struct Racer {
  std::size_t id = 0;
  std::size_t address = 0;  // index into the core's addresses
  BindPlan plan;
  AttemptTimeout timeout{};
  Timer::time_point deadline{};
  Timer::time_point started{};  // when it was planned (for the observer)
};

class RaceBook {
 public:
  void new_round() {
    next_ = 0;
    failures_.clear();
  }
  bool has_next(std::size_t addresses) const noexcept { return next_ < addresses; }
  std::size_t take_next() noexcept { return next_++; }
  std::size_t next_index() const noexcept { return next_; }

  // An id no attempt of this core has had: a race's racers and lone attempts share the count.
  std::size_t new_id() noexcept { return next_id_++; }
  std::size_t launch(std::size_t address, BindPlan plan, AttemptTimeout timeout, Timer::time_point now,
                     Timer::time_point planned = {}) {
    last_start_ = now;
    racers_.emplace_back(
        Racer{next_id_, address, std::move(plan), timeout, saturating_add(now, timeout.limit), planned});
    return next_id_++;
  }
  const Racer& last() const noexcept { return racers_.back(); }
  // Takes racer `id` out of the race (it finished); nullopt when it is not in it.
  std::optional<Racer> take(std::size_t id) {
    for (Racer& r : racers_)
      if (r.id == id) {
        Racer taken = std::move(r);
        racers_.erase(&r);
        return taken;
      }
    return std::nullopt;
  }
  // The race is over and the driver has closed every racer's socket (with a reset): their ports
  // go back as never used, with no TIME_WAIT to wait for.
  void release_all() noexcept {
    for (Racer& r : racers_)
      if (r.plan.lease) r.plan.lease->on_close(CloseKind::reset);
    racers_.clear();
  }
  // Every racer still in flight, taken out (the core closes them).
  std::vector<Racer> take_all() noexcept { return racers_.take_all(); }
  bool in_flight() const noexcept { return !racers_.empty(); }
  const RareList<Racer>& in_flight_now() const noexcept { return racers_; }
  std::optional<std::size_t> overdue(Timer::time_point now) const noexcept {
    for (const Racer& r : racers_)
      if (r.deadline <= now) return r.id;
    return std::nullopt;
  }
  // The earliest of: a racer's deadline, and (when an address is left) the next start.
  Timer::time_point wake_at(std::optional<Timer::duration> stagger) const noexcept {
    Timer::time_point at = Timer::time_point::max();
    if (stagger) at = saturating_add(last_start_, *stagger);
    for (const Racer& r : racers_) at = std::min(at, r.deadline);
    return at;
  }
  Timer::time_point last_start() const noexcept { return last_start_; }

  void failed(const NetError& error) { failures_.emplace_back(error.summary()); }
  // The last failure is about to be decided again (a late lookup ended the race): it is kept once.
  void forget_last_failure() noexcept {
    if (!failures_.empty()) failures_.pop_back();
  }
  std::size_t failure_count() const noexcept { return failures_.size(); }
  // "[::1]:7000 connect: refused (ECONNREFUSED); 127.0.0.1:7000 ..."
  std::string failures() const {
    std::string all;
    for (const std::string& f : failures_) all += (all.empty() ? "" : "; ") + f;
    return all;
  }

 private:
  RareList<Racer> racers_;
  RareList<std::string> failures_;
  Timer::time_point last_start_{};
  std::size_t next_ = 0, next_id_ = 0;
};

}  // namespace detail
}  // namespace connpolicy
