module;
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
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

// What the helper thread and the caller share; whichever leaves last frees it.
struct Lookup {
  std::mutex mutex;
  std::condition_variable_any done_cv;
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

void run_lookup(const std::shared_ptr<Lookup>& lookup, const std::string& host, Family family) {
#ifdef _WIN32
  // getaddrinfo needs Winsock started, as sockets do (WSAStartup counts its callers).
  static const int started = [] {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data);
  }();
  if (started != 0) {
    std::lock_guard lock(lookup->mutex);
    lookup->done = true;
    lookup->error = make_winsock_error(started);
    lookup->done_cv.notify_all();
    return;
  }
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
  std::lock_guard lock(lookup->mutex);
  lookup->done = true;
  if (status != 0) lookup->error = lookup_error(status);
  lookup->addresses = std::move(found);
  lookup->done_cv.notify_all();
}

}  // namespace

expected<std::vector<Endpoint>, NetError> SystemResolver::resolve(const HostPort& name, Family family,
                                                                  std::chrono::milliseconds limit,
                                                                  std::stop_token stop) const {
  const auto fail = [&](std::error_code ec, std::string detail) {
    return unexpected(
        NetError(Step::resolve, ec).with_detail(name.to_string() + (detail.empty() ? "" : ": ") + detail));
  };
  if (name.numeric()) {
    if (name.numeric()->family() != family) return std::vector<Endpoint>{};
    return std::vector<Endpoint>{*name.numeric()};
  }
  auto lookup = std::make_shared<Lookup>();
  try {
    std::thread([lookup, host = name.host(), family] { run_lookup(lookup, host, family); }).detach();
  } catch (const std::system_error& e) {
    return fail(e.code(), "could not start a thread for getaddrinfo");
  }
  std::unique_lock lock(lookup->mutex);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  if (!lookup->done_cv.wait_until(lock, stop, deadline, [&] { return lookup->done; })) {
    if (stop.stop_requested()) return fail(make_error_code(LibraryError::cancelled), "while resolving");
    return fail(make_system_error(ETIMEDOUT), "no answer within " + std::to_string(limit.count()) + " ms");
  }
  if (lookup->error) return fail(lookup->error, family == Family::ipv6 ? "IPv6 (AAAA)" : "IPv4 (A)");
  std::vector<Endpoint> out;
  out.reserve(lookup->addresses.size());
  for (const Endpoint& e : lookup->addresses) out.push_back(e.with_port(name.port()));
  return out;
}

}  // namespace connpolicy
