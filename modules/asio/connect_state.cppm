// What an async_connect operation shares with the threads that may cancel it, and the few
// conversions between Asio's types and the library's. Internal to connpolicy.asio.
module;
#include <asio.hpp>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <exception>
#include <list>
#include <memory>
#include <atomic>
#include <mutex>
#include <thread>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
export module connpolicy.asio:connect_state;
import connpolicy.core;
import connpolicy.decision;
import :tcp_socket;
import :round_lookups;

namespace connpolicy::asio::detail {

using ConnectResult = expected<TcpSocket, NetError>;

inline ::asio::ip::tcp::endpoint to_asio(const Endpoint& e) {
  ::asio::ip::tcp::endpoint out;
  sockaddr_storage storage{};
  const auto length = e.to_sockaddr(storage);
  std::memcpy(out.data(), &storage, length);
  out.resize(length);
  return out;
}

inline Endpoint from_asio(const ::asio::ip::tcp::endpoint& e) {
  sockaddr_storage storage{};
  std::memcpy(&storage, e.data(), std::min<std::size_t>(e.size(), sizeof storage));
  return Endpoint::from_sockaddr(storage, e.size()).value_or(Endpoint{});
}

// Asio reports OS errors in a category of its own; the library's one table knows errno and
// Winsock codes in the standard categories. (Names are looked up by SystemResolver or a custom
// Resolver, which report their own codes: no resolver error comes through Asio.)
inline std::error_code from_asio(std::error_code ec) noexcept {
  if (ec.category() != ::asio::system_category()) return ec;
#ifdef _WIN32
  return make_winsock_error(ec.value());
#else
  return make_system_error(ec.value());
#endif
}

// Waits longer than this are not started on a timer (a steady_timer would overflow): they mean
// "no limit".
inline constexpr std::chrono::hours longest_timer{24 * 365};

// One attempt, on a socket of its own.
struct Attempt {
  template <class Executor>
  Attempt(const Executor& ex, const Endpoint& to) : socket(ex), remote(to) {}
  ::asio::ip::tcp::socket socket;
  Endpoint remote;
  bool started = false;   // its connect has been started
  bool finished = false;  // its connect has ended, with `ec` (started on its own, not by the operation)
  std::error_code ec;
};

template <class State>
struct StopCancels {
  State* state;
  void operator()() const noexcept;
};

// Orders the operation's calls on its socket and timers with a std::stop_token's callback and the
// attempt timer's handler. Held for a few non-blocking calls only, and contended only when one of
// those fires at the moment the operation moves on: a spin lock costs a tenth of a mutex here
// (P7 in docs/benchmarks.md).
class SpinLock {
 public:
  void lock() noexcept {
    while (flag_.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  }
  void unlock() noexcept { flag_.clear(std::memory_order_release); }

 private:
  std::atomic_flag flag_;
};

// What the operation shares with the threads that may wake or cancel it: its attempts' connect
// handlers, a std::stop_token's callback, the lookup and census helper threads. The mutex orders
// their use of the attempts and the wake timer with the operation's.
template <class Core>
struct State {
  template <class Executor>
  State(const Executor& ex, std::span<const Endpoint> to) : wake(ex), remotes(to.begin(), to.end()) {
    link->state = this;
  }
  template <class Executor>
  State(const Executor& ex, const HostPort& to) : wake(ex), name(to) {
    link->state = this;
  }

  // How the helper threads (a name's lookups, the census) wake the operation: while the state
  // lives, news cancels its wake timer (under the state's lock); the state's end cuts the link.
  struct WakeLink {
    std::mutex mutex;
    State* state = nullptr;
    void operator()() {
      std::lock_guard lock(mutex);
      if (!state) return;
      std::lock_guard state_lock(state->mutex);
      state->wake.cancel();
    }
    // The bind policy's census question has been answered on the helper thread (`thrown`: what
    // it threw, if it did).
    void census_answered(std::exception_ptr thrown) {
      std::lock_guard lock(mutex);
      if (!state) return;
      std::lock_guard state_lock(state->mutex);
      state->census_done = true;
      state->census_thrown = std::move(thrown);
      state->wake.cancel();
    }
  };
  // Gone with the operation pending (an io_context destroyed, or run() left by an exception): the
  // sockets in flight close with a reset, then the core gives their leases back as unused.
  ~State() {
    {
      std::lock_guard lock(link->mutex);
      link->state = nullptr;
    }
    attempts.for_each([](AttemptId, Attempt& a) {
      std::error_code ignored;
      if (!close_with_reset(a.socket, ignored)) a.socket.close(ignored);
    });
    attempts.clear();
    core.reset();
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  SpinLock mutex;
  ::asio::steady_timer wake;  // the operation's one wait: until the core's limit, or news
  connpolicy::detail::AttemptTable<Attempt> attempts;
  std::atomic<bool> stopped{false};  // the std::stop_token fired
  // A lone attempt the operation waits on itself (its connect's completion resumes it): the wake
  // timer beside it is its timeout; `generation` makes an older attempt's timer handler stale.
  unsigned generation = 0;
  bool timed_out = false;
  std::vector<Endpoint> remotes;
  std::optional<HostPort> name;           // when connecting to a name
  std::unique_ptr<RoundLookups> lookups;  // AAAA and A at once (Asio's resolver asks one at a time)
  std::exception_ptr resolver_thrown;     // a custom resolver's throw: rethrown as the operation ends
  std::shared_ptr<WakeLink> link = std::make_shared<WakeLink>();
  Timer::time_point lookup_deadline{};  // on the connector's clock
  bool census_done = false;             // the census question asked last has been answered
  std::exception_ptr census_thrown;
  std::optional<Core> core;
  std::optional<ConnectResult> result;
  std::optional<std::stop_callback<StopCancels<State>>> on_stop;  // while the operation runs
};

template <class State>
void StopCancels<State>::operator()() const noexcept {
  std::lock_guard lock(state->mutex);
  state->stopped = true;
  state->wake.cancel();
}

}  // namespace connpolicy::asio::detail
