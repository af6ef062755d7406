// A name's lookups for the Asio driver: both families at once, each answer told to the core as it
// comes (ConnectCore decides when the race may begin: RFC 8305's resolution delay is the core's,
// as for the blocking driver). Nothing here waits: the operation takes what has come in, and an
// answer wakes it.
//   - SystemResolver (the default): getaddrinfo on its own bounded, shared helper threads. Not
//     Asio's resolver: it runs one lookup at a time per io_context (one background thread), so an
//     A query would wait behind a slow AAAA one.
//   - Any other Resolver: its blocking resolve(), for AAAA and for A, each on a helper thread
//     (helper_thread.cppm), at once; a stop asks both to end when the round is put away.
// Internal to connpolicy.asio.
module;
#include <cerrno>
#include <chrono>
#include <type_traits>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>
export module connpolicy.asio:round_lookups;
import connpolicy.core;
import connpolicy.decision;
import :helper_thread;

namespace connpolicy::asio::detail {

// One round's lookups, however they are made.
class RoundLookups {
 public:
  virtual ~RoundLookups() = default;
  // The next answer in, if any; a family still out once `now` is past the round's limit is
  // answered with a timeout. Never waits.
  virtual std::optional<FamilyAnswer> next(Timer::time_point now) = 0;
  // What the resolver threw, once (a custom resolver; SystemResolver never throws).
  virtual std::exception_ptr take_thrown() { return nullptr; }
};

class SystemRoundLookups final : public RoundLookups {
 public:
  SystemRoundLookups(const HostPort& name, std::chrono::milliseconds limit, std::function<void()> wake)
      : lookups_(SystemResolver{}.resolve_both(name, limit, std::stop_token{}, std::move(wake))) {}
  // SystemLookups keeps its deadline on the steady clock; `now` only says "do not wait".
  std::optional<FamilyAnswer> next(Timer::time_point now) override { return lookups_.next(now); }

 private:
  SystemLookups lookups_;
};

// A custom Resolver's two lookups, each on a helper thread. The resolver is shared with them: it
// must be safe to call from two threads at once (and from every connect that shares it).
template <class R>
class ResolverRoundLookups final : public RoundLookups {
 public:
  ResolverRoundLookups(std::shared_ptr<R> resolver, const HostPort& name, std::chrono::milliseconds limit,
                       Timer::time_point deadline, std::function<void()> wake)
      : box_(std::make_shared<Box>()), name_(name), limit_(limit), deadline_(deadline) {
    for (Family family : {Family::ipv6, Family::ipv4})
      HelperThreads::instance().run([box = box_, resolver, name, family, limit, wake] {
        std::optional<expected<std::vector<Endpoint>, NetError>> answer;
        std::exception_ptr thrown;
        try {
          answer.emplace(resolver->resolve(name, family, limit, box->stop.get_token()));
        } catch (...) {
          thrown = std::current_exception();
        }
        {
          std::lock_guard lock(box->mutex);
          if (thrown) {
            if (!box->thrown) box->thrown = std::move(thrown);
            answer.emplace(unexpected(NetError(Step::resolve, LibraryError::cancelled, "the resolver threw")));
          }
          box->answers[slot(family)] = std::move(answer);
        }
        wake();
      });
  }
  ~ResolverRoundLookups() override { box_->stop.request_stop(); }  // a lookup still out ends soon

  std::optional<FamilyAnswer> next(Timer::time_point now) override {
    std::lock_guard lock(box_->mutex);
    for (Family family : {Family::ipv6, Family::ipv4}) {
      const int i = slot(family);
      if (!given_[i] && box_->answers[i]) {
        given_[i] = true;
        return FamilyAnswer{family, std::move(*box_->answers[i])};
      }
    }
    if (now < deadline_) return std::nullopt;
    for (Family family : {Family::ipv6, Family::ipv4})  // the resolver broke its word: no answer in time
      if (const int i = slot(family); !given_[i]) {
        given_[i] = true;
        return FamilyAnswer{family, unexpected(NetError(Step::resolve, make_system_error(ETIMEDOUT))
                                                   .with_detail(name_.to_string() + ": no answer within " +
                                                                std::to_string(limit_.count()) + " ms"))};
      }
    return std::nullopt;
  }
  std::exception_ptr take_thrown() override {
    std::lock_guard lock(box_->mutex);
    return std::exchange(box_->thrown, nullptr);
  }

 private:
  // What the helper threads leave, shared with them: the round may be put away first.
  struct Box {
    std::mutex mutex;
    std::optional<expected<std::vector<Endpoint>, NetError>> answers[2];  // [0] IPv6, [1] IPv4
    std::exception_ptr thrown;
    std::stop_source stop;
  };
  static int slot(Family family) noexcept { return family == Family::ipv6 ? 0 : 1; }

  std::shared_ptr<Box> box_;
  HostPort name_;
  std::chrono::milliseconds limit_;
  Timer::time_point deadline_;  // on the connector's clock
  bool given_[2] = {false, false};
};

// How an operation starts a round: SystemResolver's own lookups, or a custom resolver's on the
// helper threads.
template <class R>
std::unique_ptr<RoundLookups> start_round(const std::shared_ptr<R>& resolver, const HostPort& name,
                                          std::chrono::milliseconds limit, Timer::time_point deadline,
                                          std::function<void()> wake) {
  if constexpr (std::is_same_v<R, SystemResolver>)
    return std::make_unique<SystemRoundLookups>(name, limit, std::move(wake));
  else
    return std::make_unique<ResolverRoundLookups<R>>(resolver, name, limit, deadline, std::move(wake));
}

}  // namespace connpolicy::asio::detail
