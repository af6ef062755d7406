module;
#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>
module connpolicy.bind;
import connpolicy.core;
import connpolicy.diag;

namespace connpolicy {

using std::chrono::milliseconds;

struct FixedPortRotation::State {
  // Why a port rests: what the error says when every port is cooling.
  enum class Rest : std::uint8_t {
    none, assumed_time_wait, kernel_time_wait, time_wait_unknown_end, other_socket, busy_failure, given,
  };

  static std::string_view describe(Rest why) noexcept {
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

  struct Slot final : PortLease {
    State* state = nullptr;
    std::uint16_t port = 0;
    bool in_use = false;
    bool guessed = false;  // ready_at assumes how long the kernel holds the port: ask the census
    Rest rest = Rest::none;
    std::uint64_t released = 0;  // State::releases when it last came back: newer than a census?
    Timer::time_point ready_at{};
    // Its last connection's two ends, when known: the rest can then be checked with a look_up of
    // that one connection instead of a survey. Written only while in_use (by plan() and by the
    // socket's closing_from()), read only when back in the queue: the mutex orders the two.
    std::optional<Endpoint> remote, local;
    bool look_up_ok = false;  // the rest came from our own close (or a look_up of it): ask about the pair
    void on_close(CloseKind kind) noexcept override { state->closed(*this, kind); }
    bool wants_local_endpoint() const noexcept override { return state->census != nullptr; }
    void closing_from(const Endpoint& l) noexcept override { local = l; }
    std::size_t prev = npos, next = npos;  // neighbours in the free list while not in use
  };
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  // The free slots, least recently released first: a list threaded through the slots, so taking
  // a port from the middle or putting one back moves nothing and allocates nothing (a deque did
  // both, and cost more than the rest of plan()). Caller holds the mutex.
  class FreeList {
   public:
    explicit FreeList(std::vector<Slot>& slots) noexcept : slots_(&slots) {}
    struct iterator {
      const std::vector<Slot>* slots;
      std::size_t at;
      std::size_t operator*() const noexcept { return at; }
      iterator& operator++() noexcept { at = (*slots)[at].next; return *this; }
      iterator operator++(int) noexcept { auto old = *this; ++*this; return old; }
      bool operator==(const iterator& other) const noexcept { return at == other.at; }
      using iterator_concept = std::forward_iterator_tag;
      using value_type = std::size_t;
      using difference_type = std::ptrdiff_t;
    };
    iterator begin() const noexcept { return {slots_, head_}; }
    iterator end() const noexcept { return {slots_, npos}; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    void push_back(std::size_t i) noexcept {
      Slot& slot = (*slots_)[i];
      slot.prev = tail_;
      slot.next = npos;
      (tail_ == npos ? head_ : (*slots_)[tail_].next) = i;
      tail_ = i;
      ++size_;
    }
    void erase(std::size_t i) noexcept {
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

  std::mt19937_64 random;           // guarded by mutex
  std::mutex mutex;
  std::condition_variable census_done;  // a census in flight has been applied
  std::vector<Slot> slots;          // one per port; never resized (leases point into it)
  FreeList queue;                   // free slots, least recently released first
  PortRange range;
  RotationOptions options;
  Timer* timer;
  PortCensus* census;               // nullptr: memory only
  bool survey_due = true;           // at start, and after the memory proved wrong
  bool surveying = false;           // one thread asks the kernel (without the mutex); others wait
  std::uint64_t releases = 0;       // counts put_back()s, so a census knows which slots it predates
  Timer::time_point last_survey{};
  Timer::time_point census_retry_at{};  // after a failed census, not before this
  std::optional<bool> timestamps;   // net.ipv4.tcp_timestamps, from the last census
  std::size_t surveys = 0;
  std::size_t look_ups = 0;
  std::string census_problem;

  // A port another socket holds (not TIME_WAIT), or a TIME_WAIT whose end the system does not
  // tell (Windows), is looked at again after this; a census is not taken more often than every
  // min_survey_gap unless the memory just proved wrong.
  static constexpr milliseconds recheck_held{1000};
  static constexpr milliseconds min_survey_gap{10};

  State(PortRange r, const RotationOptions& o)
      : random(seed_or_random(o.seed)),
        slots(r.size()),
        queue(slots),
        range(r),
        options(o),
        timer(&timer_or_system(o.timer)),
        census(!o.use_census ? nullptr : o.census ? o.census : default_census()) {
    std::vector<std::size_t> order(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i].state = this;
      slots[i].port = static_cast<std::uint16_t>(range.first() + i);
      order[i] = i;
    }
    // RFC 6056: a random order, so the ports a process will use cannot be guessed.
    std::shuffle(order.begin(), order.end(), random);
    for (std::size_t i : order) queue.push_back(i);
  }

  // The kernel's census where there is one: Linux, and Windows (whose table lists TIME_WAITs
  // without their time left: such a port is looked at again every recheck_held).
  static PortCensus* default_census() noexcept {
#if defined(__linux__) || defined(_WIN32)
    return &kernel_census();
#else
    return nullptr;
#endif
  }

  // RFC 6056 again: the next port is drawn from the `pick_window` ready ports that have rested
  // longest, so it cannot be guessed from the last one, yet a just-released port is not reused
  // while older ones wait.
  static constexpr std::size_t pick_window = 8;

  // How long a port rests after its socket closed normally: none when SO_REUSEADDR can reuse it
  // through TIME_WAIT (it needs TCP timestamps), else the TIME_WAIT, a guess the census corrects.
  milliseconds close_rest() const {
    if (options.cooldown) return *options.cooldown;
    if (options.reuse_address && timestamps.value_or(true)) return milliseconds(0);
    return platform_time_wait;
  }
  milliseconds busy_rest() const { return options.cooldown.value_or(milliseconds(platform_time_wait)); }

  // A slot that needs no rest: ready whatever the clock says, without reading it (a reset close
  // or a refused attempt puts its port back on every cycle; a clock read is ~40 instructions).
  static constexpr Timer::time_point ready_now = Timer::time_point::min();

  void put_back(Slot& slot, milliseconds rest, Rest why) {
    slot.in_use = false;
    slot.ready_at = rest > milliseconds(0) ? timer->now() + rest : ready_now;
    slot.rest = rest > milliseconds(0) ? why : Rest::none;
    slot.guessed = census != nullptr && rest > milliseconds(0) && !options.cooldown;
    slot.released = ++releases;
    queue.push_back(static_cast<std::size_t>(&slot - slots.data()));
  }

  void closed(Slot& slot, CloseKind kind) noexcept {
    std::lock_guard lock(mutex);
    if (!slot.in_use) return;
    if (kind == CloseKind::reset) put_back(slot, milliseconds(0), Rest::none);
    else if (kind == CloseKind::released) put_back(slot, busy_rest(), Rest::assumed_time_wait);
    else put_back(slot, close_rest(), options.cooldown ? Rest::given : Rest::assumed_time_wait);
    slot.look_up_ok = kind == CloseKind::normal && slot.guessed && slot.local && slot.remote;
  }

  // Two local addresses that cannot both bind one port: equal, or one of them any-address.
  static bool overlaps(const Endpoint& a, const Endpoint& b) noexcept {
    if (a.is_unspecified() || b.is_unspecified()) return true;
    return a.with_port(0) == b.with_port(0);
  }

  // Asks the kernel and sets the free ports' rests from what it says: a survey of the whole range,
  // or, given `asked` slots, a look_up of exactly their last connections (a hash lookup each, where
  // a survey walks every socket of the host). Either can take a while, so it runs without the
  // mutex: sockets closing, snapshot() and failed() go on meanwhile; other plan()s wait for its
  // answer rather than ask again. Called and returns with `lock` held.
  void ask(std::unique_lock<std::mutex>& lock, std::vector<std::size_t> asked = {}) {
    if (surveying) {
      census_done.wait(lock, [&] { return !surveying; });
      return;
    }
    surveying = true;
    std::vector<SocketPair> pairs;
    if (asked.empty()) {
      ++surveys;
      survey_due = false;
    } else {
      ++look_ups;
      for (std::size_t i : asked) pairs.push_back({*slots[i].local, *slots[i].remote});
    }
    const std::uint64_t as_of = releases;
    // Back under the mutex, and the waiters woken, however this ends (a user's census may throw).
    struct Relock {
      State& state;
      std::unique_lock<std::mutex>& lock;
      ~Relock() {
        lock.lock();
        state.surveying = false;
        state.census_done.notify_all();
      }
    };
    std::optional<expected<Census, NetError>> answer;
    {
      lock.unlock();
      Relock relock{*this, lock};
      answer.emplace(asked.empty() ? census->survey(range) : census->look_up(pairs));
    }
    // `now` is when the answer came back (a TIME_WAIT's time left counts from then, about).
    const auto now = timer->now();
    last_survey = now;
    if (!*answer) {
      census_problem = answer->error().message();
      census_retry_at = now + std::chrono::seconds(1);
      return;
    }
    census_problem.clear();
    timestamps = (*answer)->tcp_timestamps;
    if (asked.empty()) apply(**answer, now, as_of);
    else apply_look_up(**answer, now, as_of, asked);
  }

  // With SO_REUSEADDR and TCP timestamps, Linux binds and connects through a TIME_WAIT safely.
  bool time_wait_reusable() const { return options.reuse_address && timestamps.value_or(false); }

  // The slots whose rests a look_up can check: every free slot whose rest is a guess, if each of
  // them knows its last connection; else none (a survey is needed). All of them, as a survey
  // would, not just the one about to be offered: a guess left unasked runs out a moment later,
  // when the census was just taken (at most one per plan(), one per 10 ms), and its port would be
  // offered unchecked into a TIME_WAIT. Caller holds the mutex.
  std::vector<std::size_t> guessed_to_look_up() const {
    std::vector<std::size_t> asked;
    for (std::size_t i : queue) {
      const Slot& slot = slots[i];
      if (!slot.guessed) continue;
      if (!slot.look_up_ok) return {};
      asked.push_back(i);
    }
    return asked;
  }

  static bool same_end(const Endpoint& a, const Endpoint& b) noexcept {
    return a.family() == b.family() && a.bytes() == b.bytes() && a.port() == b.port();
  }

  // How long one socket the census reports keeps its port from us: a TIME_WAIT with its time left
  // exactly (plus the timer's slack); one without (Windows) or another state (another program, a
  // close under way) until a second look. Empty: it does not hold the port (a TIME_WAIT that
  // SO_REUSEADDR binds through). The one reading of a census answer, for surveys and look_ups.
  struct Hold {
    Timer::time_point until;
    bool guessed;
    Rest why;
  };
  std::optional<Hold> hold_of(const PortUse& use, Timer::time_point now, milliseconds slack) const {
    if (use.state != TcpState::time_wait) return Hold{now + recheck_held, true, Rest::other_socket};
    if (time_wait_reusable()) return std::nullopt;
    if (use.time_wait_left) return Hold{now + *use.time_wait_left + slack, false, Rest::kernel_time_wait};
    return Hold{now + recheck_held, true, Rest::time_wait_unknown_end};
  }

  // A look_up's answer for the `asked` slots only: its connection's hold, or free now when the
  // kernel no longer has that connection.
  void apply_look_up(const Census& answer, Timer::time_point now, std::uint64_t as_of,
                     const std::vector<std::size_t>& asked) {
    for (std::size_t i : asked) {
      Slot& slot = slots[i];
      if (slot.in_use || slot.released > as_of) continue;  // taken or back again meanwhile
      const auto use = std::ranges::find_if(answer.uses, [&](const PortUse& u) {
        return same_end(u.local, *slot.local) && same_end(u.remote, *slot.remote);
      });
      const auto hold = use == answer.uses.end() ? std::nullopt : hold_of(*use, now, answer.time_wait_slack);
      slot.ready_at = hold ? hold->until : now;
      slot.guessed = hold && hold->guessed;
      slot.rest = hold ? hold->why : Rest::none;
    }
  }

  // A survey's answer for every free slot. Slots put back after the census began (`released` >
  // as_of) keep their memory: the census may predate their TIME_WAIT.
  void apply(const Census& answer, Timer::time_point now, std::uint64_t as_of) {
    std::vector<std::optional<Hold>> holds(slots.size());
    const Endpoint source = options.source.value_or(Endpoint::any_v4());
    for (const PortUse& use : answer.uses) {
      if (!range.contains(use.local.port()) || !overlaps(use.local, source)) continue;
      const auto hold = hold_of(use, now, answer.time_wait_slack);
      if (!hold) continue;
      auto& h = holds[use.local.port() - range.first()];
      if (!h || hold->until > h->until) h = hold;
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      Slot& slot = slots[i];
      if (slot.in_use) continue;  // ours: the census sees our own live socket
      if (slot.released > as_of) continue;  // came back while the census ran
      const auto& hold = holds[i];
      if (!hold) {
        if (slot.guessed && slot.rest == Rest::busy_failure) {
          // A bind failed here, yet the census shows nothing: a socket it cannot see holds the
          // port (one that is only bound is not in /proc/net/tcp, nor in netlink's dump before
          // recent kernels, nor in Windows' table as Wine builds it). Keep the rest the failure
          // earned; binding decides again when it ends.
          slot.guessed = false;
        } else if (slot.guessed) {  // the kernel holds nothing there: free now
          slot.ready_at = now;
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

const std::shared_ptr<FixedPortRotation::State>& FixedPortRotation::state() const {
  std::call_once(made_, [this] {
    if (!state_) state_ = std::make_shared<State>(range_, options_);
  });
  return state_;
}

expected<BindPlan, NetError> FixedPortRotation::plan(const Endpoint& remote) {
  const std::shared_ptr<State>& s = state();  // no copy: this rotation keeps the ring alive
  std::unique_lock lock(s->mutex);
  auto now = s->timer->now();
  bool surveyed_now = false;
  // At most one census per plan() (its own or one in flight): at start or after a wrong guess, else
  // when it can change the answer (every port cooling, or the chosen port's rest was assumed) and
  // not too often.
  // A question about known connections is a look_up (cheap); anything else is a survey.
  const auto survey = [&](bool due, std::vector<std::size_t> asked = {}) {
    if (!s->census || surveyed_now || now < s->census_retry_at) return false;
    if (!due && s->surveys + s->look_ups > 0 && now - s->last_survey < State::min_survey_gap) return false;
    s->ask(lock, due ? std::vector<std::size_t>{} : std::move(asked));
    surveyed_now = true;
    now = s->timer->now();
    return true;
  };
  if (s->survey_due || s->surveying) survey(true);

  for (int pass = 0; pass < 2; ++pass) {
    // The ready ports among the longest rested (the queue is in release order).
    std::size_t candidates[State::pick_window];
    std::size_t found = 0;
    for (auto it = s->queue.begin(); it != s->queue.end() && found < State::pick_window; ++it)
      if (s->slots[*it].ready_at <= now) candidates[found++] = *it;
    if (found == 0) {
      if (survey(false, s->guessed_to_look_up())) continue;
      break;
    }
    const std::size_t index = candidates[std::uniform_int_distribution<std::size_t>(0, found - 1)(s->random)];
    State::Slot& slot = s->slots[index];
    if (slot.guessed && survey(false, s->guessed_to_look_up())) {
      // The census ran without the mutex: a plan() that waited for it may have taken this very port.
      if (slot.in_use || slot.ready_at > now) continue;  // taken, or the kernel still holds it
    }
    s->queue.erase(index);
    slot.in_use = true;
    slot.remote = remote;
    slot.local.reset();
    slot.look_up_ok = false;

    BindPlan plan;
    plan.local = options_.source ? options_.source->with_port(slot.port) : any_address_for(remote, slot.port);
    claim_port(plan, options_.reuse_address);
    plan.lease = std::shared_ptr<PortLease>(s, &slot);  // shares the ring's lifetime, no allocation
    return plan;
  }

  NetError error(Step::bind, LibraryError::all_ports_cooling);
  std::string detail = "all " + std::to_string(range_.size()) + " ports of " + range_.to_string() + " are ";
  if (s->queue.empty()) {
    detail += "held by open sockets";
  } else {
    const auto first_free = std::ranges::min(s->queue, {}, [&](std::size_t i) { return s->slots[i].ready_at; });
    const State::Slot& slot = s->slots[first_free];
    const auto wait = std::chrono::ceil<milliseconds>(slot.ready_at - now);
    const std::size_t in_use = range_.size() - s->queue.size();
    detail += "cooling down after a close (TIME_WAIT) or a busy failure";
    if (in_use > 0) detail += ", or in use (" + std::to_string(in_use) + ")";
    if (slot.rest == State::Rest::time_wait_unknown_end || slot.rest == State::Rest::other_socket)
      detail += "; port " + std::to_string(slot.port) + " is looked at again in " + seconds_text(wait);
    else
      detail += "; port " + std::to_string(slot.port) + " frees in " + seconds_text(wait);
    if (slot.rest != State::Rest::none) detail += " (" + std::string(State::describe(slot.rest)) + ")";
    if (!s->census_problem.empty()) detail += "; the kernel census failed: " + s->census_problem;
    error.with_retry_after(wait);
  }
  return unexpected(std::move(error).with_detail(std::move(detail)));
}

void FixedPortRotation::failed(const BindPlan& plan, const NetError& error) {
  if (!plan.lease) return;
  const std::shared_ptr<State>& s = state();  // no copy: this rotation keeps the ring alive
  auto& slot = static_cast<State::Slot&>(*plan.lease);
  std::lock_guard lock(s->mutex);
  if (!slot.in_use) return;
  if (port_is_at_fault(error)) {
    s->put_back(slot, s->busy_rest(), State::Rest::busy_failure);
    s->survey_due = true;  // the memory (or the last census) said this port would work
  } else {
    s->put_back(slot, milliseconds(0), State::Rest::none);
  }
}

FixedPortRotation::Snapshot FixedPortRotation::snapshot() const {
  const std::shared_ptr<State>& s = state();  // no copy: this rotation keeps the ring alive
  std::lock_guard lock(s->mutex);
  const auto now = s->timer->now();
  Snapshot snap;
  snap.surveys = s->surveys;
  snap.look_ups = s->look_ups;
  snap.census_problem = s->census_problem;
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
