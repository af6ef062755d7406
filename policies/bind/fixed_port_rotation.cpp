// FixedPortRotation: the lock, the census questions, lending and taking back ports. The ring's data
// is in rotation_slots, the reading of a census answer in rotation_census.
module;
#include <algorithm>
#include <chrono>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>
module connpolicy.bind;
import connpolicy.core;
import connpolicy.diag;

namespace connpolicy {

using std::chrono::milliseconds;
namespace rotation = detail::rotation;

struct FixedPortRotation::State {
  // What a socket holds: tells the ring when it closes. One per slot, made with the ring.
  struct Lease final : PortLease {
    State* state = nullptr;
    std::size_t index = 0;
    void on_close(CloseKind kind) noexcept override { state->closed(index, kind); }
    bool wants_local_endpoint() const noexcept override { return state->census != nullptr; }
    // Written while lent; the mutex orders it with the reads after the return.
    void closing_from(const Endpoint& l) noexcept override { state->slots[index].local = l; }
  };

  // One census in flight: a survey of the range, or a look_up of some slots' last connections.
  // Every plan() that wants a census meanwhile joins it rather than ask again: the first answer()
  // asks, the others wait on `mutex` for it (on their driver's thread that may block).
  struct Census {
    std::shared_ptr<State> state;
    bool survey = true;
    std::vector<std::size_t> asked;  // for a look_up
    std::mutex mutex;
    bool done = false;
    void answer() {
      std::lock_guard lock(mutex);
      if (done) return;
      done = true;
      state->run(*this);
    }
  };
  // One plan()'s question: the census it joins, and the port it drew before asking (lent after
  // the answer when the kernel holds nothing there, so the draw is not made twice).
  struct Question final : CensusQuestion {
    std::shared_ptr<Census> census;
    std::optional<std::size_t> drawn;
    void answer() override { census->answer(); }
  };

  std::mt19937_64 random;  // guarded by mutex
  std::mutex mutex;
  std::vector<rotation::Slot> slots;  // one per port; never resized (leases point into the ring)
  std::vector<Lease> leases;
  rotation::FreeList free;
  PortRange range;
  RotationOptions options;
  std::atomic<Timer*> clock{&system_timer()};  // the connector's (use_clock)
  PortCensus* census;                          // nullptr: memory only
  bool survey_due = true;                      // at start, and after the memory proved wrong
  std::weak_ptr<Census> in_flight;             // asked for and not answered yet
  std::uint64_t releases = 0;                  // counts put_back()s, so a census knows which slots it predates
  Timer::time_point last_survey{};
  Timer::time_point census_retry_at{};  // after a failed census, not before this
  std::optional<bool> timestamps;       // net.ipv4.tcp_timestamps, from the last census
  std::size_t surveys = 0, look_ups = 0;
  std::string census_problem;

  // A census is not taken more often than this unless the memory just proved wrong.
  static constexpr milliseconds min_survey_gap{10};
  // RFC 6056: the next port is drawn from the `pick_window` longest-rested ready ports, so it cannot
  // be guessed from the last one, yet a just-released port is not reused while older ones wait.
  static constexpr std::size_t pick_window = 8;

  State(PortRange r, const RotationOptions& o)
      : random(seed_or_random(o.seed)), slots(r.size()), leases(r.size()), free(slots), range(r), options(o),
        census(!o.use_census ? nullptr
               : o.census    ? o.census
                             : rotation::default_census()) {
    std::vector<std::size_t> order(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i].port = static_cast<std::uint16_t>(range.first() + i);
      leases[i].state = this;
      leases[i].index = i;
      order[i] = i;
    }
    // RFC 6056: a random order, so the ports a process will use cannot be guessed.
    std::shuffle(order.begin(), order.end(), random);
    for (std::size_t i : order) free.push_back(i);
  }

  Timer::time_point now() const noexcept { return clock.load(std::memory_order_relaxed)->now(); }

  // How long a port rests after its socket closed normally: none when SO_REUSEADDR can reuse it
  // through TIME_WAIT (it needs TCP timestamps), else the TIME_WAIT, a guess the census corrects.
  milliseconds close_rest() const {
    if (options.cooldown) return *options.cooldown;
    if (options.reuse_address && timestamps.value_or(true)) return milliseconds(0);
    return platform_time_wait;
  }
  milliseconds busy_rest() const { return options.cooldown.value_or(milliseconds(platform_time_wait)); }
  // With SO_REUSEADDR and TCP timestamps, Linux binds and connects through a TIME_WAIT safely.
  bool time_wait_reusable() const { return options.reuse_address && timestamps.value_or(false); }

  void put_back(std::size_t i, milliseconds rest, rotation::Rest why) {
    rotation::Slot& slot = slots[i];
    slot.in_use = false;
    slot.ready_at = rest > milliseconds(0) ? saturating_add(now(), rest) : rotation::ready_now;
    slot.rest = rest > milliseconds(0) ? why : rotation::Rest::none;
    slot.guessed = census != nullptr && rest > milliseconds(0) && !options.cooldown;
    slot.released = ++releases;
    free.push_back(i);
  }

  void closed(std::size_t i, CloseKind kind) noexcept {
    std::lock_guard lock(mutex);
    rotation::Slot& slot = slots[i];
    if (!slot.in_use) return;
    if (kind == CloseKind::reset)
      put_back(i, milliseconds(0), rotation::Rest::none);
    else if (kind == CloseKind::released)
      put_back(i, busy_rest(), rotation::Rest::assumed_time_wait);
    else
      put_back(i, close_rest(), options.cooldown ? rotation::Rest::given : rotation::Rest::assumed_time_wait);
    slot.look_up_ok = kind == CloseKind::normal && slot.guessed && slot.local && slot.remote;
  }

  void run(Census& asked);
  std::optional<std::size_t> take(const std::shared_ptr<State>& self, const Endpoint& remote, CensusAsk& ask);
  std::size_t lend(std::size_t index, const Endpoint& remote) {
    free.erase(index);
    rotation::Slot& slot = slots[index];
    slot.in_use = true;
    slot.remote = remote;
    slot.local.reset();
    slot.look_up_ok = false;
    return index;
  }
};

// Asks the kernel and sets the free ports' rests from what it says: a survey of the whole range,
// or a look_up of exactly some slots' last connections (a hash lookup each, where a survey walks
// every socket of the host). Either can take a while, so it runs without the mutex: sockets
// closing, snapshot(), failed() and other plan()s go on meanwhile.
void FixedPortRotation::State::run(Census& asked) {
  std::unique_lock lock(mutex);
  std::vector<SocketPair> pairs;
  if (asked.survey) {
    ++surveys;
    survey_due = false;
  } else {
    // Only slots still resting on a guess: one lent again since the question has no such rest.
    for (std::size_t i : asked.asked)
      if (const rotation::Slot& slot = slots[i]; !slot.in_use && slot.guessed && slot.local && slot.remote)
        pairs.push_back({*slot.local, *slot.remote});
    if (pairs.empty()) {
      if (in_flight.lock().get() == &asked) in_flight.reset();
      return;
    }
    ++look_ups;
  }
  const std::uint64_t as_of = releases;
  // Back under the mutex, and no longer in flight, however this ends (a user's census may throw).
  struct Relock {
    State& state;
    Census& asked;
    std::unique_lock<std::mutex>& lock;
    ~Relock() {
      lock.lock();
      if (state.in_flight.lock().get() == &asked) state.in_flight.reset();
    }
  };
  std::optional<expected<connpolicy::Census, NetError>> answer;
  {
    lock.unlock();
    Relock relock{*this, asked, lock};
    answer.emplace(asked.survey ? census->survey(range) : census->look_up(pairs));
  }
  // `now` is when the answer came back (a TIME_WAIT's time left counts from then, about).
  const auto now = this->now();
  last_survey = now;
  if (!*answer) {
    census_problem = answer->error().message();
    census_retry_at = now + std::chrono::seconds(1);
    return;
  }
  census_problem.clear();
  timestamps = (*answer)->tcp_timestamps;
  const rotation::Answer reading{**answer, now, as_of, time_wait_reusable()};
  if (asked.survey)
    rotation::apply_survey(slots, reading, range, options.source.value_or(Endpoint::any_v4()));
  else
    rotation::apply_look_up(slots, reading, asked.asked);
}

// The slot to lend, taken out of the free list; or none, with every port unavailable or with
// `ask.question` set: a census to answer first (at most one per attempt: none once ask.answered).
// The census is wanted at start or after a wrong guess, else when it can change the answer (every
// port cooling, or the drawn port's rest was assumed) and not too often. Called with the mutex held.
std::optional<std::size_t> FixedPortRotation::State::take(const std::shared_ptr<State>& self, const Endpoint& remote,
                                                          CensusAsk& ask) {
  const auto now = this->now();
  // The port drawn before the census, when the kernel holds nothing there after all.
  if (ask.answered)
    if (const auto* q = dynamic_cast<const Question*>(ask.question.get()); q && q->drawn)
      if (const rotation::Slot& slot = slots[*q->drawn]; !slot.in_use && slot.ready_at <= now)
        return lend(*q->drawn, remote);
  const auto want_census = [&](bool due, std::vector<std::size_t> asked, std::optional<std::size_t> drawn = {}) {
    if (!census || ask.answered || now < census_retry_at) return false;
    if (!due && surveys + look_ups > 0 && now - last_survey < min_survey_gap) return false;
    auto question = std::make_shared<Question>();
    question->drawn = drawn;
    question->census = in_flight.lock();  // one in flight: join it
    if (!question->census) {
      question->census = std::make_shared<Census>();
      question->census->state = self;
      question->census->survey = due || asked.empty();
      question->census->asked = std::move(asked);
      in_flight = question->census;
    }
    ask.question = std::move(question);
    return true;
  };
  // A question about known connections is a look_up (cheap); anything else is a survey.
  if ((survey_due || !in_flight.expired()) && want_census(true, {})) return std::nullopt;

  // The ready ports among the longest rested (the list is in release order).
  std::size_t candidates[pick_window];
  std::size_t found = 0;
  for (auto it = free.begin(); it != free.end() && found < pick_window; ++it)
    if (slots[*it].ready_at <= now) candidates[found++] = *it;
  if (found == 0) {
    want_census(false, rotation::guessed_to_look_up(slots, free));
    return std::nullopt;
  }
  const std::size_t index = candidates[std::uniform_int_distribution<std::size_t>(0, found - 1)(random)];
  if (slots[index].guessed && want_census(false, rotation::guessed_to_look_up(slots, free), index)) return std::nullopt;
  return lend(index, remote);
}

expected<FixedPortRotation, NetError> FixedPortRotation::make(long first, long last, RotationOptions options) {
  auto range = PortRange::make(first, last);
  if (!range) return unexpected(std::move(range).error());
  FixedPortRotation rotation(*range, options);
  if (auto ok = rotation.check(); !ok) return unexpected(std::move(ok).error());
  return rotation;
}

expected<void, NetError> FixedPortRotation::check() const {
  if (options_.cooldown)
    if (auto e = check_duration("RotationOptions::cooldown", *options_.cooldown, true))
      return unexpected(std::move(*e));
  return {};
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

expected<BindPlan, NetError> FixedPortRotation::plan(const Endpoint& remote, CensusAsk& ask) {
  const std::shared_ptr<State>& s = state();  // no copy: this rotation keeps the ring alive
  std::unique_lock lock(s->mutex);
  const auto index = s->take(s, remote, ask);
  if (!index && ask.question && !ask.answered)
    return unexpected(NetError(Step::bind, make_system_error(EWOULDBLOCK))
                          .with_detail("FixedPortRotation: answer ask.question (the census) first, then plan again"));
  if (!index)
    return unexpected(rotation::all_ports_unavailable(s->slots, s->free, range_, s->now(), s->census_problem));
  const std::uint16_t port = s->slots[*index].port;
  BindPlan plan;
  plan.local = options_.source ? options_.source->with_port(port) : any_address_for(remote, port);
  claim_port(plan, options_.reuse_address);
  plan.lease = std::shared_ptr<PortLease>(s, &s->leases[*index]);  // shares the ring's lifetime, no allocation
  return plan;
}

void FixedPortRotation::use_clock(Timer& clock) { state()->clock.store(&clock, std::memory_order_relaxed); }

expected<BindPlan, NetError> FixedPortRotation::plan(const Endpoint& remote) {
  CensusAsk ask;
  auto first = plan(remote, ask);
  if (!ask.question) return first;
  ask.question->answer();
  ask.answered = true;
  return plan(remote, ask);
}

void FixedPortRotation::failed(const BindPlan& plan, const NetError& error) {
  if (!plan.lease) return;
  const std::shared_ptr<State>& s = state();  // no copy: this rotation keeps the ring alive
  const std::size_t index = static_cast<State::Lease&>(*plan.lease).index;
  std::lock_guard lock(s->mutex);
  if (!s->slots[index].in_use) return;
  if (rotation::port_is_at_fault(error)) {
    s->put_back(index, s->busy_rest(), rotation::Rest::busy_failure);
    s->survey_due = true;  // the memory (or the last census) said this port would work
  } else {
    s->put_back(index, milliseconds(0), rotation::Rest::none);
  }
}

FixedPortRotation::Snapshot FixedPortRotation::snapshot() const {
  const std::shared_ptr<State>& s = state();  // no copy: this rotation keeps the ring alive
  std::lock_guard lock(s->mutex);
  const auto now = s->now();
  Snapshot snap;
  snap.surveys = s->surveys;
  snap.look_ups = s->look_ups;
  snap.census_problem = s->census_problem;
  snap.in_use = s->slots.size() - s->free.size();
  for (std::size_t i : s->free) {
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
