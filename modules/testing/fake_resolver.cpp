module;
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>
module connpolicy.testing;
import connpolicy.core;

namespace connpolicy {

struct FakeResolver::Script {
  struct Entry {
    std::string host;
    Family family;
    FakeAnswer answer;
    bool used = false;
  };
  std::mutex mutex;
  ManualTimer* timer = nullptr;
  std::vector<Entry> entries;
  std::vector<std::string> asked;
};

FakeResolver::FakeResolver(ManualTimer* timer) : script_(std::make_shared<Script>()) { script_->timer = timer; }

FakeResolver& FakeResolver::answer(std::string host, Family family, FakeAnswer answer) {
  std::lock_guard lock(script_->mutex);
  script_->entries.push_back({std::move(host), family, std::move(answer)});
  return *this;
}

FakeAnswer FakeResolver::take(const HostPort& name, Family family) {
  std::lock_guard lock(script_->mutex);
  script_->asked.push_back(name.host() + (family == Family::ipv6 ? " AAAA" : " A"));
  // The first scripted answer for this name and family not used yet; the last one stays.
  Script::Entry* last = nullptr;
  for (auto& e : script_->entries)
    if (e.host == name.host() && e.family == family && !e.used) {
      last = &e;
      break;
    }
  if (!last)
    for (auto& e : script_->entries)
      if (e.host == name.host() && e.family == family) last = &e;
  if (!last) return {};
  last->used = true;
  return last->answer;
}

namespace {

// What a lookup that takes `found.delay` answers within `limit`, and after how long.
std::pair<std::chrono::milliseconds, expected<std::vector<Endpoint>, NetError>>
outcome(const FakeAnswer& found, const HostPort& name, std::chrono::milliseconds limit) {
  const auto fail = [&](std::error_code ec) {
    return unexpected(NetError(Step::resolve, ec).with_detail(name.to_string()));
  };
  if (found.delay > limit) return {limit, fail(make_system_error(ETIMEDOUT))};
  if (found.error) return {found.delay, fail(found.error)};
  std::vector<Endpoint> out;
  for (const Endpoint& e : found.addresses) out.push_back(e.with_port(name.port()));
  return {found.delay, std::move(out)};
}

}  // namespace

expected<std::vector<Endpoint>, NetError> FakeResolver::resolve(const HostPort& name, Family family,
                                                                std::chrono::milliseconds limit, std::stop_token stop) {
  const FakeAnswer found = take(name, family);
  if (stop.stop_requested())
    return unexpected(NetError(Step::resolve, make_error_code(LibraryError::cancelled)).with_detail(name.to_string()));
  auto [after, result] = outcome(found, name, limit);
  if (script_->timer) script_->timer->advance(after);
  return result;
}

FakeLookups FakeResolver::resolve_both(const HostPort& name, std::chrono::milliseconds limit, std::stop_token stop) {
  const Timer::time_point now = script_->timer ? script_->timer->now() : Timer::time_point{};
  std::vector<FakeLookups::Due> due;
  for (Family family : {Family::ipv6, Family::ipv4}) {
    auto [after, result] = outcome(take(name, family), name, limit);
    due.push_back({now + after, FamilyAnswer{family, std::move(result)}});
  }
  return FakeLookups(script_->timer, std::move(due), std::move(stop));
}

FakeLookups::FakeLookups(ManualTimer* timer, std::vector<Due> due, std::stop_token stop)
    : timer_(timer), due_(std::move(due)), stop_(std::move(stop)) {}

std::optional<FamilyAnswer> FakeLookups::next(Timer::time_point until) {
  if (stop_.stop_requested()) return std::nullopt;
  Due* first = nullptr;  // the earliest not given yet (IPv6 first at a tie)
  for (Due& d : due_)
    if (!d.given && (!first || d.at < first->at)) first = &d;
  const Timer::time_point now = timer_ ? timer_->now() : Timer::time_point::min();
  if (first && (!timer_ || first->at <= until)) {
    if (timer_ && first->at > now) timer_->advance(first->at - now);
    first->given = true;
    return std::move(first->answer);
  }
  if (timer_ && until != Timer::time_point::max() && until > now) timer_->advance(until - now);
  return std::nullopt;
}

std::vector<std::string> FakeResolver::asked() const {
  std::lock_guard lock(script_->mutex);
  return script_->asked;
}

}  // namespace connpolicy
