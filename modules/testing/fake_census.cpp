module;
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>
module connpolicy.testing;
import connpolicy.core;
import connpolicy.diag;

namespace connpolicy {

void FakeCensus::add_time_wait(const Endpoint& local, const Endpoint& remote, std::chrono::milliseconds left) {
  std::lock_guard lock(mutex_);
  entries_.push_back({PortUse{local, remote, TcpState::time_wait, left}, timer_->now() + left});
}

void FakeCensus::add(const Endpoint& local, const Endpoint& remote, TcpState state) {
  std::lock_guard lock(mutex_);
  entries_.push_back({PortUse{local, remote, state, std::nullopt}, std::nullopt});
}

void FakeCensus::remove(std::uint16_t local_port) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const Entry& e) { return e.use.local.port() == local_port; });
}

void FakeCensus::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
}

void FakeCensus::fail_with(std::error_code code) {
  std::lock_guard lock(mutex_);
  failure_ = code;
}

void FakeCensus::set_tcp_timestamps(std::optional<bool> on) {
  std::lock_guard lock(mutex_);
  timestamps_ = on;
}

void FakeCensus::set_time_wait_slack(std::chrono::milliseconds slack) {
  std::lock_guard lock(mutex_);
  slack_ = slack;
}

void FakeCensus::report_time_left(bool report) {
  std::lock_guard lock(mutex_);
  report_time_left_ = report;
}

void FakeCensus::while_surveying(std::function<void()> hook) {
  std::lock_guard lock(mutex_);
  while_surveying_ = std::move(hook);
}

template <class Wanted>
expected<Census, NetError> FakeCensus::answer(Wanted wanted) {
  if (failure_) return unexpected(NetError(Step::census, failure_).with_detail("FakeCensus::fail_with"));
  const auto now = timer_->now();
  std::erase_if(entries_, [&](const Entry& e) { return e.frees_at && *e.frees_at <= now; });  // the timer fired
  Census census;
  census.tcp_timestamps = timestamps_;
  census.time_wait_slack = slack_;
  for (const Entry& e : entries_) {
    if (!wanted(e.use)) continue;
    PortUse use = e.use;
    if (e.frees_at) use.time_wait_left = std::chrono::ceil<std::chrono::milliseconds>(*e.frees_at - now);
    if (!report_time_left_) use.time_wait_left.reset();  // as Windows: TIME_WAIT, no time
    census.uses.push_back(use);
  }
  return census;
}

expected<Census, NetError> FakeCensus::survey(PortRange range) {
  std::function<void()> hook;
  auto census = [&] {
    std::lock_guard lock(mutex_);
    ++surveys_;
    hook = while_surveying_;
    return answer([&](const PortUse& use) { return range.contains(use.local.port()); });
  }();
  if (hook) hook();
  return census;
}

expected<Census, NetError> FakeCensus::look_up(std::span<const SocketPair> pairs) {
  std::function<void()> hook;
  auto census = [&] {
    std::lock_guard lock(mutex_);
    ++look_ups_;
    hook = while_surveying_;
    return answer([&](const PortUse& use) {
      return std::ranges::any_of(pairs,
                                 [&](const SocketPair& p) { return p.local == use.local && p.remote == use.remote; });
    });
  }();
  if (hook) hook();
  return census;
}

std::size_t FakeCensus::surveys() const {
  std::lock_guard lock(mutex_);
  return surveys_;
}

std::size_t FakeCensus::look_ups() const {
  std::lock_guard lock(mutex_);
  return look_ups_;
}

}  // namespace connpolicy
