// Who holds a socket. Linux, as `ss -p` and `lsof` find it: sock_diag and /proc/net/tcp give each
// socket's inode; one pass over /proc/PID/fd/ finds the processes whose descriptors link to
// `socket:[INODE]`. Another user's descriptors can be read only as root: such a socket's owner is
// "unknown (needs root)", never a guess. Windows: the TCP table gives the owning pid itself; the
// image name comes from the process (OpenProcess with the least right that names it).
module;
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#ifdef __linux__
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#endif
#ifdef _WIN32
#include <windows.h>
#endif
module connpolicy.diag;
import connpolicy.core;

namespace connpolicy {
namespace {

#ifdef __linux__
// A directory entry's name as a number (a pid, a descriptor), or empty.
std::optional<std::uint64_t> number(const char* name) {
  if (!*name) return std::nullopt;
  std::uint64_t value = 0;
  for (const char* c = name; *c; ++c) {
    if (*c < '0' || *c > '9' || value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(*c - '0');
  }
  return value;
}

// "socket:[12345]" -> 12345.
std::optional<std::uint64_t> socket_inode(std::string_view link) {
  constexpr std::string_view prefix = "socket:[";
  if (!link.starts_with(prefix) || !link.ends_with(']')) return std::nullopt;
  const std::string digits(link.substr(prefix.size(), link.size() - prefix.size() - 1));
  return number(digits.c_str());
}

// /proc/PID/comm without its newline ("" when it cannot be read: the process has ended).
std::string command_of(int proc, const char* pid) {
  const int fd = ::openat(proc, (std::string(pid) + "/comm").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buffer[64];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  ::close(fd);
  std::string command(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!command.empty() && command.back() == '\n') command.pop_back();
  return command;
}

// The processes holding any of `wanted`'s inodes, from one pass over /proc.
void walk_proc(const std::unordered_set<std::uint64_t>& wanted, SocketOwners& owners) {
  const int proc = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) return;
  const int listing = ::fcntl(proc, F_DUPFD_CLOEXEC, 0);
  DIR* processes = listing >= 0 ? ::fdopendir(listing) : nullptr;
  if (!processes) {
    if (listing >= 0) ::close(listing);
    ::close(proc);
    return;
  }
  while (const dirent* p = ::readdir(processes)) {
    const auto pid = number(p->d_name);
    if (!pid || *pid > UINT32_MAX) continue;
    ++owners.processes;
    const int fds = ::openat(proc, (std::string(p->d_name) + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fds < 0) {
      if (errno == EACCES || errno == EPERM) ++owners.unreadable;  // another user's, without root
      continue;                                                    // or it ended meanwhile
    }
    DIR* entries = ::fdopendir(fds);
    if (!entries) {
      ::close(fds);
      continue;
    }
    std::string command;
    while (const dirent* e = ::readdir(entries)) {
      if (!number(e->d_name)) continue;
      char link[64];
      const ssize_t n = ::readlinkat(::dirfd(entries), e->d_name, link, sizeof link);
      if (n <= 0 || n == sizeof link) continue;
      const auto inode = socket_inode(std::string_view(link, static_cast<std::size_t>(n)));
      if (!inode || !wanted.contains(*inode)) continue;
      auto [it, first] = owners.by_inode.try_emplace(*inode);
      if (!first) {  // shared (a fork): the first holder is named, the others counted
        ++it->second.other_holders;
        continue;
      }
      if (command.empty()) command = command_of(proc, p->d_name);
      it->second.pid = static_cast<std::uint32_t>(*pid);
      it->second.command = command;
      it->second.unknown = SocketOwner::Unknown::none;
    }
    ::closedir(entries);
  }
  ::closedir(processes);
  ::close(proc);
}
#endif

#ifdef _WIN32
// The image's file name ("loginclient.exe"), or "" when the process cannot be opened.
std::string image_name(std::uint32_t pid) {
  HANDLE process = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (!process) return {};
  char path[MAX_PATH];
  DWORD size = MAX_PATH;
  const BOOL ok = ::QueryFullProcessImageNameA(process, 0, path, &size);
  ::CloseHandle(process);
  if (!ok) return {};
  const std::string_view full(path, size);
  const auto slash = full.find_last_of("\\/");
  return std::string(slash == std::string_view::npos ? full : full.substr(slash + 1));
}
#endif

}  // namespace

SocketOwner SocketOwners::of(const PortUse& use) const {
  SocketOwner owner;
  owner.uid = use.uid;
  if (use.state == TcpState::time_wait) {
    owner.unknown = SocketOwner::Unknown::time_wait;
    return owner;
  }
  if (use.pid) {  // Windows: the table said
    owner.pid = use.pid;
    if (const auto it = by_pid.find(*use.pid); it != by_pid.end()) owner.command = it->second;
    owner.unknown = SocketOwner::Unknown::none;
    return owner;
  }
  if (const auto it = by_inode.find(use.inode); use.inode != 0 && it != by_inode.end()) {
    owner.pid = it->second.pid;
    owner.command = it->second.command;
    owner.other_holders = it->second.other_holders;
    owner.unknown = SocketOwner::Unknown::none;
    return owner;
  }
  owner.unknown = !looked          ? SocketOwner::Unknown::not_asked
                  : unreadable > 0 ? SocketOwner::Unknown::needs_root
                                   : SocketOwner::Unknown::not_found;
  return owner;
}

std::string to_string(const SocketOwner& owner) {
  std::string text;
  switch (owner.unknown) {
    case SocketOwner::Unknown::none:
      text = "pid " + std::to_string(*owner.pid) + (owner.command.empty() ? "" : " (" + owner.command + ")");
      if (owner.other_holders > 0) text += " and " + std::to_string(owner.other_holders) + " more";
      break;
    case SocketOwner::Unknown::time_wait: return "no process (TIME_WAIT: the kernel holds it)";
    case SocketOwner::Unknown::needs_root: text = "unknown (needs root)"; break;
    case SocketOwner::Unknown::not_found: text = "unknown (open in no process visible here)"; break;
    case SocketOwner::Unknown::not_asked: text = "not looked up"; break;
  }
  if (owner.uid) text += ", uid " + std::to_string(*owner.uid);
  return text;
}

SocketOwners find_socket_owners(std::span<const PortUse> uses) {
  SocketOwners owners;
  owners.looked = true;
#ifdef __linux__
  std::unordered_set<std::uint64_t> wanted;
  for (const PortUse& use : uses)
    if (use.inode != 0 && use.state != TcpState::time_wait) wanted.insert(use.inode);
  if (!wanted.empty()) walk_proc(wanted, owners);
#elif defined(_WIN32)
  for (const PortUse& use : uses)
    if (use.pid && !owners.by_pid.contains(*use.pid)) owners.by_pid.emplace(*use.pid, image_name(*use.pid));
#else
  (void)uses;
#endif
  return owners;
}

}  // namespace connpolicy
