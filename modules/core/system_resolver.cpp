module;
#include <algorithm>
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

// What the helper threads and the caller share; whoever leaves last frees it.
struct SystemLookups::Shared {
  std::mutex mutex;
  std::condition_variable_any done_cv;
  Result results[2];                // [0] IPv6, [1] IPv4
  std::function<void()> on_answer;  // set before the threads start
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

void run_lookup(const std::shared_ptr<SystemLookups::Shared>& shared, const std::string& host, Family family) {
#ifdef _WIN32
  // getaddrinfo needs Winsock started, as sockets do (WSAStartup counts its callers).
  static const int started = [] {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data);
  }();
  if (started != 0) return finish(*shared, family, make_winsock_error(started), {});
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
  finish(*shared, family, status != 0 && !no_record(status) ? lookup_error(status) : std::error_code{},
         std::move(found));
}

// Starts `family`'s lookup of `name` on a helper thread (a numeric name is answered at once).
std::error_code start(const std::shared_ptr<SystemLookups::Shared>& shared, const HostPort& name, Family family) {
  if (name.numeric()) {
    std::vector<Endpoint> found;
    if (name.numeric()->family() == family) found.push_back(*name.numeric());
    finish(*shared, family, {}, std::move(found));
    return {};
  }
  try {
    std::thread([shared, host = name.host(), family] { run_lookup(shared, host, family); }).detach();
  } catch (const std::system_error& e) {
    return e.code();
  }
  return {};
}

NetError failure(const HostPort& name, std::error_code ec, const std::string& detail) {
  return NetError(Step::resolve, ec).with_detail(name.to_string() + (detail.empty() ? "" : ": ") + detail);
}

const char* family_name(Family family) { return family == Family::ipv6 ? "IPv6 (AAAA)" : "IPv4 (A)"; }

// A finished lookup's answer, with the name's port.
expected<std::vector<Endpoint>, NetError> answer_of(const Result& r, const HostPort& name, Family family) {
  if (r.error) return unexpected(failure(name, r.error, family_name(family)));
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
  if (auto ec = start(shared, name, family))
    return unexpected(failure(name, ec, "could not start a thread for getaddrinfo"));
  std::unique_lock lock(shared->mutex);
  const Result& r = shared->results[slot_of(family)];
  const auto deadline = std::chrono::steady_clock::now() + limit;
  if (!shared->done_cv.wait_until(lock, stop, deadline, [&] { return r.done; })) {
    if (stop.stop_requested())
      return unexpected(failure(name, make_error_code(LibraryError::cancelled), "while resolving"));
    return unexpected(
        failure(name, make_system_error(ETIMEDOUT), "no answer within " + std::to_string(limit.count()) + " ms"));
  }
  return answer_of(r, name, family);
}

SystemLookups SystemResolver::resolve_both(const HostPort& name, std::chrono::milliseconds limit, std::stop_token stop,
                                           std::function<void()> on_answer) const {
  auto shared = std::make_shared<SystemLookups::Shared>();
  shared->on_answer = std::move(on_answer);
  for (Family family : {Family::ipv6, Family::ipv4})
    if (auto ec = start(shared, name, family))  // answered at once with why
      finish(*shared, family, ec, {});
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
                                                 std::string(family_name(family)) + ": no answer within " +
                                                     std::to_string(limit_.count()) + " ms"))};
}

}  // namespace connpolicy
