module;
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <fstream>
#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
module connpolicy.diag;
import connpolicy.core;

namespace connpolicy {

std::string_view to_string(TcpState state) noexcept {
  switch (state) {
    case TcpState::established: return "ESTABLISHED";
    case TcpState::syn_sent: return "SYN_SENT";
    case TcpState::syn_recv: return "SYN_RECV";
    case TcpState::fin_wait1: return "FIN_WAIT1";
    case TcpState::fin_wait2: return "FIN_WAIT2";
    case TcpState::time_wait: return "TIME_WAIT";
    case TcpState::close: return "CLOSE";
    case TcpState::close_wait: return "CLOSE_WAIT";
    case TcpState::last_ack: return "LAST_ACK";
    case TcpState::listen: return "LISTEN";
    case TcpState::closing: return "CLOSING";
    case TcpState::new_syn_recv: return "NEW_SYN_RECV";
  }
  return "UNKNOWN";
}

std::string_view to_string(CensusSource source) noexcept {
  switch (source) {
    case CensusSource::netlink: return "netlink sock_diag";
    case CensusSource::proc_net_tcp: return "/proc/net/tcp";
    case CensusSource::tcp_table: return "GetExtendedTcpTable";
  }
  return "unknown";
}

#ifdef __linux__
namespace {
// Errors that say "netlink sock_diag is not offered here" (a sandbox, a kernel without
// inet_diag): the automatic census then reads /proc for good instead of asking again.
bool netlink_refused(const NetError& error) {
  switch (error.code().value()) {
    case EPERM:
    case EACCES:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
    case ENOENT:
    case EOPNOTSUPP:
    case EINVAL: return error.code().category() == std::system_category();
    default: return false;
  }
}
}  // namespace
#endif

expected<Census, NetError> KernelCensus::survey(PortRange range) {
#if defined(_WIN32)
  // No TIME_WAIT time left, no timestamps setting to read, no timer slack to add.
  auto uses = detail::survey_tcp_table(range);
  if (!uses) return unexpected(std::move(uses).error());
  Census census;
  census.uses = std::move(*uses);
  census.source = CensusSource::tcp_table;
  return census;
#elif !defined(__linux__)
  (void)range;
  return unexpected(NetError(Step::census, make_system_error(EOPNOTSUPP))
                        .with_detail("no kernel census on this platform yet: Linux and Windows only"));
#else
  Census census;
  census.tcp_timestamps = tcp_timestamps_enabled();
  census.time_wait_slack = time_wait_timer_slack();
  const bool try_netlink = method_ == CensusMethod::netlink ||
                           (method_ == CensusMethod::automatic && !netlink_refused_.load(std::memory_order_relaxed));
  if (try_netlink) {
    auto uses = detail::survey_netlink(range);
    if (uses) {
      census.uses = std::move(*uses);
      census.source = CensusSource::netlink;
      return census;
    }
    if (method_ == CensusMethod::netlink) return unexpected(std::move(uses).error());
    if (netlink_refused(uses.error())) netlink_refused_.store(true, std::memory_order_relaxed);
  }
  auto uses = detail::survey_proc_net_tcp(range);
  if (!uses) return unexpected(std::move(uses).error());
  census.uses = std::move(*uses);
  census.source = CensusSource::proc_net_tcp;
  return census;
#endif
}

bool same_end(const Endpoint& a, const Endpoint& b) noexcept {
  const Endpoint x = a.unmapped(), y = b.unmapped();  // ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
  return x.family() == y.family() && x.bytes() == y.bytes() && x.port() == y.port();
}

expected<Census, NetError> PortCensus::look_up(std::span<const SocketPair> pairs) {
  if (pairs.empty()) return Census{};
  const auto [low, high] = std::ranges::minmax(pairs, {}, [](const SocketPair& p) { return p.local.port(); });
  auto range = PortRange::make(std::max<long>(low.local.port(), 1), std::max<long>(high.local.port(), 1));
  if (!range) return unexpected(std::move(range).error());
  auto census = survey(*range);
  if (!census) return census;
  std::erase_if(census->uses, [&](const PortUse& use) {
    return std::ranges::none_of(
        pairs, [&](const SocketPair& p) { return same_end(p.local, use.local) && same_end(p.remote, use.remote); });
  });
  return census;
}

expected<Census, NetError> KernelCensus::look_up(std::span<const SocketPair> pairs) {
#ifdef __linux__
  const bool try_netlink = method_ == CensusMethod::netlink ||
                           (method_ == CensusMethod::automatic && !netlink_refused_.load(std::memory_order_relaxed));
  if (try_netlink) {
    auto uses = detail::look_up_netlink(pairs);
    if (uses) {
      Census census;
      census.tcp_timestamps = tcp_timestamps_enabled();
      census.time_wait_slack = time_wait_timer_slack();
      census.uses = std::move(*uses);
      return census;
    }
    if (method_ == CensusMethod::netlink) return unexpected(std::move(uses).error());
    if (netlink_refused(uses.error())) netlink_refused_.store(true, std::memory_order_relaxed);
  }
#endif
  return PortCensus::look_up(pairs);  // survey() reads /proc here, or says why it cannot
}

PortCensus& kernel_census() noexcept {
  static KernelCensus census;  // constructed on first use: no global constructor runs at start-up
  return census;
}

std::chrono::milliseconds time_wait_timer_slack() noexcept {
#ifndef __linux__
  return std::chrono::milliseconds(0);
#else
  static const std::chrono::milliseconds slack = [] {
    timespec tick{};
    long long tick_ns = 4'000'000;  // HZ=250 when the tick cannot be read
    if (::clock_getres(CLOCK_MONOTONIC_COARSE, &tick) == 0 && tick.tv_sec == 0 && tick.tv_nsec >= 1'000'000)
      tick_ns = tick.tv_nsec;
    // kernel/time/timer.c: level n (n >= 1) starts at 63 << 3(n-1) ticks; its granularity is
    // 8^n ticks, and a timer is rounded up by at most that.
    const long long ticks = 60'000'000'000LL / tick_ns;  // TCP_TIMEWAIT_LEN
    int level = 0;
    while (level < 8 && ticks >= (63LL << (3 * level))) ++level;
    const long long granularity = 1LL << (3 * level);
    return std::chrono::ceil<std::chrono::milliseconds>(std::chrono::nanoseconds((granularity + 2) * tick_ns));
  }();
  return slack;
#endif
}

std::optional<bool> tcp_timestamps_enabled() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_timestamps");
  int value = -1;
  if (!(f >> value) || value < 0) return std::nullopt;
  return value != 0;
}

expected<PortRange, NetError> ephemeral_port_range() {
  constexpr const char* path = "/proc/sys/net/ipv4/ip_local_port_range";
#ifdef __linux__
  std::ifstream f(path);
  long first = -1, last = -1;
  if (!(f >> first >> last))
    return unexpected(NetError(Step::census, make_system_error(f.is_open() ? EIO : ENOENT))
                          .with_detail(std::string("cannot read ") + path));
  return PortRange::make(first, last);
#else
  return unexpected(NetError(Step::census, make_system_error(EOPNOTSUPP))
                        .with_detail(std::string(path) + " is Linux's; this system has no such range to read"));
#endif
}

}  // namespace connpolicy
