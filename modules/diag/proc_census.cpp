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

// Appends the sockets of one file whose local port is in `range`. false when a line is not in
// the format this code knows (the kernel's format has been stable since 2.6).
bool read_table(std::FILE* f, bool v6, PortRange range, long ticks_per_second, std::vector<PortUse>& out) {
  char line[512];
  if (!std::fgets(line, sizeof line, f)) return true;  // header (an empty table has only this)
  while (std::fgets(line, sizeof line, f)) {           // ends at end of file
    const auto use = parse_proc_net_tcp_line(line, v6, ticks_per_second);
    if (!use) return false;
    if (range.contains(use->local.port())) out.push_back(*use);
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
