module;
#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <utility>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#endif
module connpolicy.core;

namespace connpolicy {
namespace {

// One family's lookup, as its helper thread leaves it.
struct Result {
  bool done = false;
  std::error_code error;
  std::vector<Endpoint> addresses;
};

std::error_code lookup_error(int status) {
#ifdef _WIN32
  return make_winsock_error(status);
#else
  if (status == EAI_SYSTEM) return make_system_error(errno);
  return make_resolver_error(status);
#endif
}

// The name exists but has no record of the family asked: an empty answer, not an error (the
// Resolver concept's rule), so the other family decides.
bool no_record(int status) {
#ifdef _WIN32
  return status == WSANO_DATA;
#elif defined(EAI_NODATA)
  return status == EAI_NODATA;
#else
  (void)status;
  return false;
#endif
}

}  // namespace

// What the helper threads and the caller share; whoever leaves last frees it. The helper
// threads hold it weakly: a caller that gave up lets it go, and a lookup nobody waits for any
// more is never started.
struct SystemLookups::Shared {
  std::mutex mutex;
  std::condition_variable_any done_cv;
  Result results[2];                  // [0] IPv6, [1] IPv4
  std::atomic<bool> started[2] = {};  // a helper thread has taken the lookup (or it needed none)
  std::function<void()> on_answer;    // set before the lookups are asked for
};

namespace {

int slot_of(Family family) { return family == Family::ipv6 ? 0 : 1; }

void finish(SystemLookups::Shared& shared, Family family, std::error_code error, std::vector<Endpoint> found) {
  {
    std::lock_guard lock(shared.mutex);
    Result& r = shared.results[slot_of(family)];
    r.done = true;
    r.error = error;
    r.addresses = std::move(found);
    shared.done_cv.notify_all();
  }
  if (shared.on_answer) shared.on_answer();
}

// getaddrinfo for one family: the addresses (getaddrinfo's order, without duplicates), or why not.
std::pair<std::error_code, std::vector<Endpoint>> look_up(const std::string& host, Family family) {
#ifdef _WIN32
  // getaddrinfo needs Winsock started, as sockets do (WSAStartup counts its callers).
  static const int started = [] {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data);
  }();
  if (started != 0) return {make_winsock_error(started), {}};
#endif
  addrinfo hints{};
  hints.ai_family = family == Family::ipv4 ? AF_INET : AF_INET6;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  // No AI_ADDRCONFIG: with it glibc answers nothing for "localhost" on a host whose only
  // addresses are loopback ones (a container, a test's network namespace). An address of a
  // family the host lacks fails its connect at once, and the next is tried.
  addrinfo* list = nullptr;
  const int status = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  std::vector<Endpoint> found;
  for (const addrinfo* a = list; status == 0 && a; a = a->ai_next) {
    sockaddr_storage storage{};
    if (a->ai_addrlen > sizeof storage) continue;
    std::memcpy(&storage, a->ai_addr, a->ai_addrlen);
    if (auto e = Endpoint::from_sockaddr(storage, a->ai_addrlen); e && std::ranges::find(found, *e) == found.end())
      found.push_back(*e);
  }
  if (list) freeaddrinfo(list);
  return {status != 0 && !no_record(status) ? lookup_error(status) : std::error_code{}, std::move(found)};
}

// The process's getaddrinfo helper threads. One lookup per name and family is in flight at a
// time: whoever asks for it meanwhile joins it and gets its answer (a storm of connects to one
// name costs one thread, not one each). At most limit() threads run; a lookup that finds them all
// busy waits in line, within its caller's own limit. A thread ends when the line is empty.
class HelperThreads {
 public:
  // Never destroyed: a helper thread may still be in getaddrinfo when the program ends.
  static HelperThreads& instance() {
    static HelperThreads* const threads = new HelperThreads;
    return *threads;
  }

  // `family`'s lookup of `host` for `waiter`: joins the one in flight, or starts one.
  void ask(const std::shared_ptr<SystemLookups::Shared>& waiter, const std::string& host, Family family) {
    std::unique_lock lock(mutex_);
    std::shared_ptr<Flight>& flight = flights_[{host, family}];
    if (flight) {
      flight->waiters.push_back(waiter);
      ++joined_;
      if (flight->started) waiter->started[slot_of(family)] = true;
      return;
    }
    flight = std::make_shared<Flight>(Flight{host, family, false, {waiter}});
    line_.push_back(flight);
    if (running_ >= limit_) return;  // it waits in line for a thread that finishes
    ++running_;
    try {
      std::thread([this] { work(); }).detach();
      peak_ = std::max(peak_, running_);
    } catch (const std::system_error& e) {
      --running_;
      if (running_ > 0) return;  // a running thread will take it
      // No thread at all: nobody would take it, so it fails now with why.
      std::erase(line_, flight);
      flights_.erase({host, family});
      lock.unlock();
      finish(*waiter, family, e.code(), {});
    }
  }

  SystemResolver::HelperThreadUse use() {
    std::lock_guard lock(mutex_);
    std::size_t waiting = 0;
    for (const auto& flight : line_) waiting += flight->wanted() ? 1 : 0;
    return {running_, peak_, limit_, waiting, joined_};
  }

  void set_limit(std::size_t limit) {
    std::unique_lock lock(mutex_);
    limit_ = std::max<std::size_t>(limit, 1);
    std::size_t more = 0;  // a raised limit serves the line at once
    while (running_ + more < limit_ && more < line_.size()) ++more;
    for (; more > 0; --more) {
      ++running_;
      try {
        std::thread([this] { work(); }).detach();
        peak_ = std::max(peak_, running_);
      } catch (const std::system_error&) {
        --running_;
        break;
      }
    }
  }

  std::size_t limit() {
    std::lock_guard lock(mutex_);
    return limit_;
  }

 private:
  struct Flight {
    std::string host;
    Family family;
    bool started;
    std::vector<std::weak_ptr<SystemLookups::Shared>> waiters;
    bool wanted() const {
      return std::ranges::any_of(waiters, [](const auto& w) { return !w.expired(); });
    }
  };

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      while (!line_.empty() && !line_.front()->wanted()) {  // every caller gave up: never asked
        flights_.erase({line_.front()->host, line_.front()->family});
        line_.pop_front();
      }
      if (line_.empty()) {
        --running_;
        return;
      }
      const std::shared_ptr<Flight> flight = line_.front();
      line_.pop_front();
      flight->started = true;
      for (const auto& w : flight->waiters)
        if (auto waiter = w.lock()) waiter->started[slot_of(flight->family)] = true;
      lock.unlock();
      auto [error, found] = look_up(flight->host, flight->family);
      lock.lock();
      flights_.erase({flight->host, flight->family});  // later askers start a new lookup
      const auto waiters = std::move(flight->waiters);
      lock.unlock();
      for (const auto& w : waiters)
        if (auto waiter = w.lock()) finish(*waiter, flight->family, error, found);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::map<std::pair<std::string, Family>, std::shared_ptr<Flight>> flights_;  // asked and not answered
  std::deque<std::shared_ptr<Flight>> line_;                                   // asked, no thread yet
  std::size_t limit_ = SystemResolver::default_helper_threads;
  std::size_t running_ = 0;
  std::size_t peak_ = 0;
  std::size_t joined_ = 0;
};

// Asks for `family`'s lookup of `name` (a numeric name is answered at once, with no thread).
void start(const std::shared_ptr<SystemLookups::Shared>& shared, const HostPort& name, Family family) {
  if (name.numeric()) {
    std::vector<Endpoint> found;
    if (name.numeric()->family() == family) found.push_back(*name.numeric());
    shared->started[slot_of(family)] = true;
    finish(*shared, family, {}, std::move(found));
    return;
  }
  HelperThreads::instance().ask(shared, name.host(), family);
}

NetError failure(const HostPort& name, std::error_code ec, const std::string& detail) {
  return NetError(Step::resolve, ec).with_detail(name.to_string() + (detail.empty() ? "" : ": ") + detail);
}

// Why a lookup ended without an answer within `limit`: the name server was slow, or every helper
// thread was busy with lookups that had not been answered (so this one never started).
std::string no_answer(std::chrono::milliseconds limit, bool started) {
  std::string why = "no answer within " + std::to_string(limit.count()) + " ms";
  if (!started)
    why += " (the lookup never started: all " + std::to_string(HelperThreads::instance().limit()) +
           " helper threads were waiting on lookups the name server had not answered; "
           "SystemResolver::set_helper_thread_limit raises the bound)";
  return why;
}

// A finished lookup's answer, with the name's port.
expected<std::vector<Endpoint>, NetError> answer_of(const Result& r, const HostPort& name, Family family) {
  if (r.error) return unexpected(failure(name, r.error, std::string(lookup_name(family))));
  std::vector<Endpoint> out;
  out.reserve(r.addresses.size());
  for (const Endpoint& e : r.addresses) out.push_back(e.with_port(name.port()));
  return out;
}

}  // namespace

expected<std::vector<Endpoint>, NetError> SystemResolver::resolve(const HostPort& name, Family family,
                                                                  std::chrono::milliseconds limit,
                                                                  std::stop_token stop) const {
  auto shared = std::make_shared<SystemLookups::Shared>();
  start(shared, name, family);
  std::unique_lock lock(shared->mutex);
  const Result& r = shared->results[slot_of(family)];
  const auto deadline = std::chrono::steady_clock::now() + limit;
  if (!shared->done_cv.wait_until(lock, stop, deadline, [&] { return r.done; })) {
    if (stop.stop_requested())
      return unexpected(failure(name, make_error_code(LibraryError::cancelled), "while resolving"));
    return unexpected(failure(name, make_system_error(ETIMEDOUT), no_answer(limit, shared->started[slot_of(family)])));
  }
  return answer_of(r, name, family);
}

SystemLookups SystemResolver::resolve_both(const HostPort& name, std::chrono::milliseconds limit, std::stop_token stop,
                                           std::function<void()> on_answer) const {
  auto shared = std::make_shared<SystemLookups::Shared>();
  shared->on_answer = std::move(on_answer);
  for (Family family : {Family::ipv6, Family::ipv4}) start(shared, name, family);
  return SystemLookups(std::move(shared), name, limit, std::move(stop));
}

SystemLookups::SystemLookups(std::shared_ptr<Shared> shared, HostPort name, std::chrono::milliseconds limit,
                             std::stop_token stop)
    : shared_(std::move(shared)), name_(std::move(name)), limit_(limit),
      deadline_(saturating_add(std::chrono::steady_clock::now(), limit)), stop_(std::move(stop)) {}

std::optional<FamilyAnswer> SystemLookups::next(Timer::time_point until) {
  std::unique_lock lock(shared_->mutex);
  const auto ready = [&] {
    for (int i = 0; i < 2; ++i)
      if (!given_[i] && shared_->results[i].done) return i;
    return -1;
  };
  const auto any_left = [&] { return !given_[0] || !given_[1]; };
  if (!any_left()) return std::nullopt;
  shared_->done_cv.wait_until(lock, stop_, std::min(until, deadline_), [&] { return ready() >= 0; });
  if (const int i = ready(); i >= 0) {
    given_[i] = true;
    const Family family = i == 0 ? Family::ipv6 : Family::ipv4;
    return FamilyAnswer{family, answer_of(shared_->results[i], name_, family)};
  }
  if (stop_.stop_requested() || std::chrono::steady_clock::now() < deadline_) return std::nullopt;
  // The limit passed: the first family still out is answered with a timeout (the lookup thread
  // finishes on its own).
  const int i = given_[0] ? 1 : 0;
  given_[i] = true;
  const Family family = i == 0 ? Family::ipv6 : Family::ipv4;
  return FamilyAnswer{family, unexpected(failure(name_, make_system_error(ETIMEDOUT),
                                                 std::string(lookup_name(family)) + ": " +
                                                     no_answer(limit_, shared_->started[slot_of(family)])))};
}

SystemResolver::HelperThreadUse SystemResolver::helper_threads() { return HelperThreads::instance().use(); }

void SystemResolver::set_helper_thread_limit(std::size_t limit) { HelperThreads::instance().set_limit(limit); }

}  // namespace connpolicy
