// For tests that ctest runs under `unshare -n` (a network namespace of their own): bring its
// loopback up, and check that loopback is all there is, so that a name lookup that falls through
// /etc/hosts to DNS fails on this host instead of sending a query out.
#pragma once
#ifdef __linux__
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mount.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

namespace test_support {
// True when every interface is loopback and "lo" is up (brought up here if it was not).
inline bool in_loopback_only_namespace() {
  struct if_nameindex* names = if_nameindex();
  if (!names) return false;
  bool only_lo = true;
  for (struct if_nameindex* i = names; i->if_index != 0; ++i)
    if (std::string_view(i->if_name) != "lo") only_lo = false;
  if_freenameindex(names);
  if (!only_lo) return false;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = ::ioctl(fd, SIOCGIFFLAGS, &request) == 0;
  if (up && !(request.ifr_flags & IFF_UP)) {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    up = ::ioctl(fd, SIOCSIFFLAGS, &request) == 0;
  }
  ::close(fd);
  return up;
}

// A TIME_WAIT can end before its 60 s: a segment that reaches it (a late ACK of the peer's FIN)
// is answered, the peer's closed socket replies with an RST, and with net.ipv4.tcp_rfc1337 = 0
// (the default) that RST ends the TIME_WAIT at once. tcp_rfc1337 = 1 makes a TIME_WAIT ignore
// RSTs and last its 60 s. The sysctl is per network namespace: tests set it only in their own.

// True when TIME_WAITs in this namespace last their 60 s (tcp_rfc1337 = 1).
inline bool time_waits_last() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_rfc1337");
  int value = 0;
  return f >> value && value == 1;
}
// Sets tcp_rfc1337 = 1 here; call only in a network namespace of the test's own. True when it holds.
inline bool make_time_waits_last() {
  {
    std::ofstream("/proc/sys/net/ipv4/tcp_rfc1337") << "1\n";
  }
  return time_waits_last();
}

// Moves this process into a network namespace of its own, with its loopback up and TIME_WAITs
// that last (what catch_main_netns.cpp and connpolicy_in_own_netns do first). Returns why not, in
// one line for stderr, or an empty string when all of it was done.
inline std::string enter_own_netns() {
  if (::unshare(CLONE_NEWNET) != 0)
    return std::string("no network namespace of its own here (") + std::strerror(errno) + "): the host's loopback";
  if (!in_loopback_only_namespace()) return "own network namespace made, but its loopback would not come up";
  if (!make_time_waits_last()) return "own network namespace made, but tcp_rfc1337 could not be set to 1";
  return {};
}

// Gives this process an /etc/hosts of its own (`lines`), in a mount namespace of its own, so a
// test can make up a name with the addresses it needs; with `resolv_conf`, its own
// /etc/resolv.conf too (e.g. a FakeNameServer's "nameserver 127.0.0.1"). Call before any thread starts (unshare
// refuses a process with threads). False when this host does not allow it.
inline bool with_own_hosts_file(const std::string& lines, const std::string& resolv_conf = {}) {
  // Each file's content in a temporary file, bound over the real one.
  const auto bind_over = [](const std::string& content, const char* target) {
    char path[] = "/tmp/connpolicy-etc-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) return false;
    const bool written = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    const bool ok = written && ::mount(path, target, nullptr, MS_BIND, nullptr) == 0;
    ::unlink(path);  // the bind mount keeps the file's content
    return ok;
  };
  if (::unshare(CLONE_NEWNS) != 0 || ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (!bind_over(lines, "/etc/hosts")) return false;
  return resolv_conf.empty() || (::access("/etc/resolv.conf", F_OK) == 0 && bind_over(resolv_conf, "/etc/resolv.conf"));
}
// "dual.test" is ::1 and 127.0.0.1, by this process's own /etc/hosts, and other names are asked
// of 127.0.0.1:53 (a FakeNameServer), by its own /etc/resolv.conf. Made once for the process, by
// whichever test asks first, before any thread starts (unshare refuses a process with threads).
inline bool dual_test_hosts() {
  static const bool made = with_own_hosts_file("::1 dual.test\n127.0.0.1 dual.test\n",
                                               "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
  return made;
}

}  // namespace test_support
#endif
