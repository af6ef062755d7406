module;
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>
module connpolicy.bind;
import connpolicy.core;

namespace connpolicy {

using std::chrono::milliseconds;

struct FixedPortRotation::State {
  struct Slot final : PortLease {
    State* state = nullptr;
    std::uint16_t port = 0;
    bool in_use = false;
    Timer::time_point ready_at{};
    void on_close(CloseKind kind) noexcept override { state->closed(*this, kind); }
  };

  std::mt19937_64 random;           // guarded by mutex
  std::mutex mutex;
  std::vector<Slot> slots;          // one per port; never resized (leases point into it)
  std::deque<std::size_t> queue;    // free slots, least recently released first
  Timer* timer;
  milliseconds close_cooldown;      // after a normal close
  milliseconds busy_cooldown;       // after a busy failure, or a release of the handle

  State(PortRange range, const RotationOptions& options)
      : random(options.seed != 0 ? options.seed
                                 : (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}()),
        slots(range.size()),
        timer(options.timer ? options.timer : &system_timer()),
        close_cooldown(options.cooldown.value_or(options.reuse_address ? milliseconds(0) : milliseconds(platform_time_wait))),
        busy_cooldown(options.cooldown.value_or(milliseconds(platform_time_wait))) {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i].state = this;
      slots[i].port = static_cast<std::uint16_t>(range.first() + i);
      queue.push_back(i);
    }
    // RFC 6056: a random order, so the ports a process will use cannot be guessed.
    std::shuffle(queue.begin(), queue.end(), random);
  }

  // RFC 6056 again: the next port is drawn from the `pick_window` ready ports that have rested
  // longest, so it cannot be guessed from the last one, yet a just-released port is not reused
  // while older ones wait.
  static constexpr std::size_t pick_window = 8;

  void put_back(Slot& slot, milliseconds cooldown) {
    slot.in_use = false;
    slot.ready_at = timer->now() + cooldown;
    queue.push_back(static_cast<std::size_t>(&slot - slots.data()));
  }

  void closed(Slot& slot, CloseKind kind) noexcept {
    std::lock_guard lock(mutex);
    if (!slot.in_use) return;
    put_back(slot, kind == CloseKind::reset ? milliseconds(0)
                   : kind == CloseKind::released ? busy_cooldown : close_cooldown);
  }
};

namespace {
// A failure that says the port itself cannot be used now, as opposed to the peer refusing.
bool port_is_at_fault(const NetError& error) {
  switch (error.condition()) {
    case Errc::local_port_busy:
    case Errc::local_ports_exhausted:  // Windows 10048 at connect without our port known
      return true;
    case Errc::permission_denied:      // e.g. Windows' excluded port ranges (10013)
    case Errc::address_not_available:
      return error.step() == Step::bind;
    default:
      return false;
  }
}

std::string seconds_text(milliseconds d) {
  const auto tenths = (d.count() + 50) / 100;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}
}  // namespace

expected<FixedPortRotation, NetError> FixedPortRotation::make(long first, long last, RotationOptions options) {
  auto range = PortRange::make(first, last);
  if (!range) return unexpected(std::move(range).error());
  return FixedPortRotation(*range, options);
}

FixedPortRotation::FixedPortRotation(const FixedPortRotation& other)
    : range_(other.range_), options_(other.options_), state_(other.state()) {}

FixedPortRotation& FixedPortRotation::operator=(const FixedPortRotation& other) {
  if (this != &other) {
    range_ = other.range_;
    options_ = other.options_;
    state_ = other.state();
  }
  return *this;
}

FixedPortRotation::~FixedPortRotation() = default;

std::shared_ptr<FixedPortRotation::State> FixedPortRotation::state() const {
  std::call_once(made_, [this] {
    if (!state_) state_ = std::make_shared<State>(range_, options_);
  });
  return state_;
}

expected<BindPlan, NetError> FixedPortRotation::plan(const Endpoint& remote) {
  const std::shared_ptr<State> s = state();
  std::lock_guard lock(s->mutex);
  const auto now = s->timer->now();
  // The ready ports among the longest rested (the queue is in release order).
  std::deque<std::size_t>::iterator candidates[State::pick_window];
  std::size_t found = 0;
  for (auto it = s->queue.begin(); it != s->queue.end() && found < State::pick_window; ++it)
    if (s->slots[*it].ready_at <= now) candidates[found++] = it;
  if (found == 0) {
    NetError error(Step::bind, LibraryError::all_ports_cooling);
    std::string detail = "all " + std::to_string(range_.size()) + " ports of " + range_.to_string() + " are ";
    if (s->queue.empty()) {
      detail += "held by open sockets";
    } else {
      const auto first_free = std::ranges::min(s->queue, {}, [&](std::size_t i) { return s->slots[i].ready_at; });
      const auto wait = std::chrono::ceil<milliseconds>(s->slots[first_free].ready_at - now);
      const std::size_t in_use = range_.size() - s->queue.size();
      detail += "cooling down after a close (TIME_WAIT) or a busy failure";
      if (in_use > 0) detail += ", or in use (" + std::to_string(in_use) + ")";
      detail += "; port " + std::to_string(s->slots[first_free].port) + " frees in " + seconds_text(wait);
      error.with_retry_after(wait);
    }
    return unexpected(std::move(error).with_detail(std::move(detail)));
  }
  const auto ready = candidates[std::uniform_int_distribution<std::size_t>(0, found - 1)(s->random)];
  State::Slot& slot = s->slots[*ready];
  s->queue.erase(ready);
  slot.in_use = true;

  BindPlan plan;
  plan.local = options_.source ? options_.source->with_port(slot.port) : any_address_for(remote, slot.port);
  if (options_.reuse_address) plan.add({SocketOption::reuse_address, 1, true});
  plan.lease = std::shared_ptr<PortLease>(s, &slot);  // shares the ring's lifetime, no allocation
  return plan;
}

void FixedPortRotation::failed(const BindPlan& plan, const NetError& error) {
  if (!plan.lease) return;
  const std::shared_ptr<State> s = state();
  auto& slot = static_cast<State::Slot&>(*plan.lease);
  std::lock_guard lock(s->mutex);
  if (slot.in_use) s->put_back(slot, port_is_at_fault(error) ? s->busy_cooldown : milliseconds(0));
}

FixedPortRotation::Snapshot FixedPortRotation::snapshot() const {
  const std::shared_ptr<State> s = state();
  std::lock_guard lock(s->mutex);
  const auto now = s->timer->now();
  Snapshot snap;
  snap.in_use = s->slots.size() - s->queue.size();
  for (std::size_t i : s->queue) {
    const auto& slot = s->slots[i];
    if (slot.ready_at <= now) {
      ++snap.ready;
      if (!snap.next_port) snap.next_port = slot.port;
    } else {
      ++snap.cooling;
      const auto wait = std::chrono::ceil<milliseconds>(slot.ready_at - now);
      if (!snap.next_ready_in || wait < *snap.next_ready_in) snap.next_ready_in = wait;
    }
  }
  return snap;
}

}  // namespace connpolicy
