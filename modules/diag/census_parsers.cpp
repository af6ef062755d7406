// The census's readers of outside input (see census.cppm): /proc/net/tcp lines, Windows' TCP
// table, netlink datagrams. Every field is copied out with memcpy after its bounds are checked, so
// any bytes (a fuzzer's, a hostile process's datagram) are read safely, whatever their alignment.
module;
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#ifdef __linux__
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#endif
module connpolicy.diag;
import connpolicy.core;

namespace connpolicy::detail {
namespace {

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

bool known_state(unsigned state) {
  return state >= static_cast<unsigned>(TcpState::established) &&
         state <= static_cast<unsigned>(TcpState::new_syn_recv);
}

std::uint32_t dword_at(std::span<const unsigned char> bytes, std::size_t offset) {
  std::uint32_t value;
  std::memcpy(&value, bytes.data() + offset, 4);
  return value;
}

// The table's ports are in network order in the low 16 bits of a DWORD (read as the host, x86 and
// ARM Windows alike, stores it: little-endian).
std::uint16_t port_of(std::uint32_t dword) {
  const auto low = static_cast<std::uint16_t>(dword & 0xffff);
  return static_cast<std::uint16_t>((low >> 8) | (low << 8));
}

// MIB_TCP_STATE_* (1 CLOSED ... 12 DELETE_TCB) to the kernel's numbering; CLOSED and DELETE_TCB
// hold no port: empty.
std::optional<TcpState> state_of_mib(std::uint32_t mib) {
  static constexpr std::array<TcpState, 10> states{
      TcpState::listen,    TcpState::syn_sent,   TcpState::syn_recv, TcpState::established, TcpState::fin_wait1,
      TcpState::fin_wait2, TcpState::close_wait, TcpState::closing,  TcpState::last_ack,    TcpState::time_wait};
  if (mib < 2 || mib > 11) return std::nullopt;
  return states[mib - 2];
}

}  // namespace

std::optional<PortUse> parse_proc_net_tcp_line(std::string_view text, bool v6, long ticks_per_second) {
  if (text.size() >= 512 || ticks_per_second <= 0 || ticks_per_second > 1'000'000)
    return std::nullopt;         // the kernel's lines are ~150 bytes
  const std::string line(text);  // sscanf needs the terminating NUL
  char local[33], remote[33];
  unsigned local_port, remote_port, state, timer;
  unsigned long when, inode = 0;
  unsigned uid = 0;
  // ... retrnsmt uid timeout inode: the owner's columns, when the line has them.
  const int fields =
      std::sscanf(line.c_str(), " %*u: %32[0-9A-Fa-f]:%x %32[0-9A-Fa-f]:%x %x %*x:%*x %x:%lx %*x %u %*d %lu", local,
                  &local_port, remote, &remote_port, &state, &timer, &when, &uid, &inode);
  if (fields != 7 && fields != 9) return std::nullopt;
  if (local_port > 65535 || remote_port > 65535 || !known_state(state)) return std::nullopt;
  PortUse use;
  if (v6) {
    std::array<std::uint8_t, 16> l, r;
    if (!parse_address(local, l) || !parse_address(remote, r)) return std::nullopt;
    use.local = Endpoint::ipv6(l, static_cast<std::uint16_t>(local_port));
    use.remote = Endpoint::ipv6(r, static_cast<std::uint16_t>(remote_port));
  } else {
    std::array<std::uint8_t, 4> l, r;
    if (!parse_address(local, l) || !parse_address(remote, r)) return std::nullopt;
    use.local = Endpoint::ipv4(l, static_cast<std::uint16_t>(local_port));
    use.remote = Endpoint::ipv4(r, static_cast<std::uint16_t>(remote_port));
  }
  use.state = static_cast<TcpState>(state);
  if (use.state == TcpState::time_wait) {  // `when`: the TIME_WAIT timer's ticks left (60 s of them at most)
    const auto ticks = static_cast<unsigned long>(ticks_per_second);
    const unsigned long capped = when < 3600 * ticks ? when : 3600 * ticks;  // an hour: no TIME_WAIT is longer
    use.time_wait_left = std::chrono::milliseconds(static_cast<long long>(capped * 1000 / ticks));
  } else if (fields == 9) {
    use.inode = inode;
    use.uid = uid;
  }
  return use;
}

bool walk_tcp_table(std::span<const unsigned char> table, bool v6, PortRange range, std::vector<PortUse>& out) {
  // MIB_TCPROW_OWNER_PID: state, local addr, local port, remote addr, remote port, pid (6 DWORDs).
  // MIB_TCP6ROW_OWNER_PID: local addr[16], scope, port; remote addr[16], scope, port; state, pid.
  const std::size_t row_size = v6 ? 56 : 24;
  if (table.size() < 4) return false;
  const std::uint32_t rows = dword_at(table, 0);
  if (rows > (table.size() - 4) / row_size) return false;
  for (std::size_t i = 0; i < rows; ++i) {
    const auto row = table.subspan(4 + i * row_size, row_size);
    const auto state = state_of_mib(dword_at(row, v6 ? 48 : 0));
    const std::uint16_t port = port_of(dword_at(row, v6 ? 20 : 8));
    if (!state || !range.contains(port)) continue;
    PortUse use{.state = *state};
    if (const std::uint32_t pid = dword_at(row, v6 ? 52 : 20); pid != 0 && *state != TcpState::time_wait) use.pid = pid;
    if (v6) {
      std::array<std::uint8_t, 16> local, remote;
      std::memcpy(local.data(), row.data(), 16);
      std::memcpy(remote.data(), row.data() + 24, 16);
      use.local = Endpoint::ipv6(local, port, dword_at(row, 16));
      use.remote = Endpoint::ipv6(remote, port_of(dword_at(row, 44)), dword_at(row, 40));
    } else {
      std::array<std::uint8_t, 4> local, remote;
      std::memcpy(local.data(), row.data() + 4, 4);  // network order, as Endpoint keeps it
      std::memcpy(remote.data(), row.data() + 12, 4);
      use.local = Endpoint::ipv4(local, port);
      use.remote = Endpoint::ipv4(remote, port_of(dword_at(row, 16)));
    }
    out.push_back(use);
  }
  return true;
}

#ifdef __linux__
namespace {
Endpoint endpoint_of(std::uint8_t family, const __be32 (&address)[4], __be16 port) {
  const auto host_port = static_cast<std::uint16_t>((port >> 8 & 0xff) | (port & 0xff) << 8);  // ntohs
  if (family == AF_INET) {
    std::array<std::uint8_t, 4> bytes;
    std::memcpy(bytes.data(), address, 4);
    return Endpoint::ipv4(bytes, host_port);
  }
  std::array<std::uint8_t, 16> bytes;
  std::memcpy(bytes.data(), address, 16);
  return Endpoint::ipv6(bytes, host_port);
}

// An inet_diag message as a PortUse; empty when its family or state is not one TCP has.
std::optional<PortUse> use_of(const inet_diag_msg& m) {
  if ((m.idiag_family != AF_INET && m.idiag_family != AF_INET6) || !known_state(m.idiag_state)) return std::nullopt;
  PortUse use;
  use.local = endpoint_of(m.idiag_family, m.id.idiag_src, m.id.idiag_sport);
  use.remote = endpoint_of(m.idiag_family, m.id.idiag_dst, m.id.idiag_dport);
  use.state = static_cast<TcpState>(m.idiag_state);
  if (use.state == TcpState::time_wait) {
    use.time_wait_left = std::chrono::milliseconds(m.idiag_expires);
  } else {
    use.inode = m.idiag_inode;
    use.uid = m.idiag_uid;
  }
  return use;
}

int error_of(std::span<const unsigned char> message) {
  if (message.size() < NLMSG_LENGTH(sizeof(nlmsgerr))) return EPROTO;
  nlmsgerr e;
  std::memcpy(&e, message.data() + NLMSG_HDRLEN, sizeof e);
  return e.error < 0 && e.error > -4096 ? -e.error : EPROTO;  // the kernel sends -errno; 0 is an ACK
}
}  // namespace

NetlinkReply walk_netlink_datagram(std::span<const unsigned char> datagram, std::uint32_t sender,
                                   std::uint32_t sequence, bool single_answer) {
  NetlinkReply reply;
  if (sender != 0) {
    reply.ignored = true;
    return reply;
  }
  // By hand, not NLMSG_OK/NLMSG_NEXT, which mix signed and unsigned lengths.
  for (std::size_t offset = 0; offset < datagram.size() && datagram.size() - offset >= sizeof(nlmsghdr);) {
    nlmsghdr h;
    std::memcpy(&h, datagram.data() + offset, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > datagram.size() - offset) break;  // truncated
    const auto message = datagram.subspan(offset, h.nlmsg_len);
    offset += NLMSG_ALIGN(h.nlmsg_len);
    if (h.nlmsg_seq != sequence) continue;
    if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
      reply.done = true;
      if (h.nlmsg_type == NLMSG_ERROR) reply.error = error_of(message);
      return reply;
    }
    if ((h.nlmsg_type != SOCK_DIAG_BY_FAMILY && h.nlmsg_type != TCPDIAG_GETSOCK) ||
        message.size() < NLMSG_LENGTH(sizeof(inet_diag_msg)))
      continue;
    inet_diag_msg m;
    std::memcpy(&m, message.data() + NLMSG_HDRLEN, sizeof m);
    if (auto use = use_of(m)) reply.uses.push_back(*use);
    if (single_answer) {
      reply.done = true;
      return reply;
    }
  }
  return reply;
}
#endif

}  // namespace connpolicy::detail
