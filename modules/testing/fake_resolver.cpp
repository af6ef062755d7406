module;
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
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

expected<std::vector<Endpoint>, NetError> FakeResolver::resolve(const HostPort& name, Family family,
                                                                std::chrono::milliseconds limit, std::stop_token stop) {
  FakeAnswer found;
  {
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
    if (last) {
      found = last->answer;
      last->used = true;
    }
  }
  const auto fail = [&](std::error_code ec) {
    return unexpected(NetError(Step::resolve, ec).with_detail(name.to_string()));
  };
  if (stop.stop_requested()) return fail(make_error_code(LibraryError::cancelled));
  if (found.delay > limit) {
    if (script_->timer) script_->timer->advance(limit);
    return fail(make_system_error(ETIMEDOUT));
  }
  if (script_->timer) script_->timer->advance(found.delay);
  if (found.error) return fail(found.error);
  std::vector<Endpoint> out;
  for (const Endpoint& e : found.addresses) out.push_back(e.with_port(name.port()));
  return out;
}

std::vector<std::string> FakeResolver::asked() const {
  std::lock_guard lock(script_->mutex);
  return script_->asked;
}

}  // namespace connpolicy
