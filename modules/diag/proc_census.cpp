// The census from /proc/net/tcp and /proc/net/tcp6: the fallback where netlink is refused. It
// reads every TCP socket of the namespace (the kernel cannot filter a text file), so it costs
// more than netlink on a busy host; TIME_WAIT's time left comes in clock ticks (10 ms).
module;
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>
#ifdef __linux__
#include <unistd.h>
#endif
module connpolicy.diag;
import connpolicy.core;

namespace connpolicy::detail {
#ifdef __linux__
namespace {

class File {
 public:
  explicit File(const char* path) noexcept : f_(std::fopen(path, "re")) {}
  ~File() {
    if (f_) std::fclose(f_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  std::FILE* get() const noexcept { return f_; }

 private:
  std::FILE* f_;
};

// "0100007F" (IPv4) or 32 hex digits (IPv6): each 8-digit group is a 32-bit word of the address
// as it lies in memory, printed as a host-order number; reading it back the same way and
// copying its bytes restores the address on either endianness.
template <std::size_t N>
bool parse_address(const char* hex, std::array<std::uint8_t, N>& bytes) {
  if (std::strlen(hex) != 2 * N) return false;
  for (std::size_t word = 0; word < N / 4; ++word) {
    char group[9] = {};
    std::memcpy(group, hex + 8 * word, 8);
    char* end = nullptr;
    const auto value = static_cast<std::uint32_t>(std::strtoul(group, &end, 16));
    if (end != group + 8) return false;
    std::memcpy(bytes.data() + 4 * word, &value, 4);
  }
  return true;
}

// Appends the sockets of one file whose local port is in `range`. false when a line is not in
// the format this code knows (the kernel's format has been stable since 2.6).
bool read_table(std::FILE* f, bool v6, PortRange range, long ticks_per_second, std::vector<PortUse>& out) {
  char line[512];
  if (!std::fgets(line, sizeof line, f)) return true;  // header (an empty table has only this)
  while (std::fgets(line, sizeof line, f)) {           // ends at end of file
    char local[33], remote[33];
    unsigned local_port, remote_port, state, timer;
    unsigned long when;
    if (std::sscanf(line, " %*u: %32[0-9A-Fa-f]:%x %32[0-9A-Fa-f]:%x %x %*x:%*x %x:%lx", local, &local_port, remote,
                    &remote_port, &state, &timer, &when) != 7)
      return false;
    if (local_port > 65535 || !range.contains(static_cast<std::uint16_t>(local_port))) continue;
    PortUse use;
    if (v6) {
      std::array<std::uint8_t, 16> l, r;
      if (!parse_address(local, l) || !parse_address(remote, r)) return false;
      use.local = Endpoint::ipv6(l, static_cast<std::uint16_t>(local_port));
      use.remote = Endpoint::ipv6(r, static_cast<std::uint16_t>(remote_port));
    } else {
      std::array<std::uint8_t, 4> l, r;
      if (!parse_address(local, l) || !parse_address(remote, r)) return false;
      use.local = Endpoint::ipv4(l, static_cast<std::uint16_t>(local_port));
      use.remote = Endpoint::ipv4(r, static_cast<std::uint16_t>(remote_port));
    }
    use.state = static_cast<TcpState>(state);
    if (use.state == TcpState::time_wait)  // timer 3: the TIME_WAIT timer, `when` in clock ticks
      use.time_wait_left = std::chrono::milliseconds(static_cast<long long>(when) * 1000 / ticks_per_second);
    out.push_back(use);
  }
  return true;
}

}  // namespace
#endif

expected<std::vector<PortUse>, NetError> survey_proc_net_tcp(PortRange range) {
#ifndef __linux__
  (void)range;
  return unexpected(NetError(Step::census, make_system_error(EOPNOTSUPP)).with_detail("/proc/net/tcp is Linux's"));
#else
  const long ticks = ::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100;
  std::vector<PortUse> uses;
  for (const bool v6 : {false, true}) {
    const char* path = v6 ? "/proc/net/tcp6" : "/proc/net/tcp";
    File f(path);
    if (!f.get()) {
      if (v6 && errno == ENOENT) continue;  // no IPv6 in this kernel: nothing to report
      return unexpected(
          NetError(Step::census, make_system_error(errno)).with_detail(std::string("cannot open ") + path));
    }
    if (!read_table(f.get(), v6, range, ticks, uses))
      return unexpected(NetError(Step::census, make_system_error(EPROTO))
                            .with_detail(std::string("a line of ") + path + " is not in the expected format"));
  }
  return uses;
#endif
}

}  // namespace connpolicy::detail
