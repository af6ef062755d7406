// The census's readers of outside input, given bytes made here: netlink datagrams (the kernel's
// and a stranger's), /proc/net/tcp lines, Windows' table (read on any platform).
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>
#ifdef __linux__
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#endif
import connpolicy;

namespace cp = connpolicy;
using namespace std::chrono_literals;

TEST_CASE("census parsers: a /proc/net/tcp line, and lines that are not the kernel's", "[census-parsers]") {
  // 127.0.0.1:40000 -> 127.0.0.1:7000, TIME_WAIT (06), timer 3 with 0x1770 = 6000 ticks left.
  const char* line =
      "   3: 0100007F:9C40 0100007F:1B58 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000";
  const auto use = cp::detail::parse_proc_net_tcp_line(line, false, 100);
  REQUIRE(use);
  CHECK(use->local == cp::Endpoint::loopback_v4(40000));
  CHECK(use->remote == cp::Endpoint::loopback_v4(7000));
  CHECK(use->state == cp::TcpState::time_wait);
  CHECK(use->time_wait_left == 60000ms);
  const char* v6 = "   0: 00000000000000000000000001000000:1B58 00000000000000000000000000000000:0000 0A "
                   "00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0";
  const auto listener = cp::detail::parse_proc_net_tcp_line(v6, true, 100);
  REQUIRE(listener);
  CHECK(listener->local == cp::Endpoint::loopback_v6(7000));
  CHECK(listener->state == cp::TcpState::listen);
  CHECK_FALSE(listener->time_wait_left);
  CHECK(listener->inode == 1);  // the owner's columns: uid 0, inode 1
  CHECK(listener->uid == 0u);
  CHECK(use->inode == 0);  // a TIME_WAIT: no process, no owner
  CHECK_FALSE(use->uid);
  const char* owned = "   1: 0100007F:9C41 0100007F:1B58 01 00000000:00000000 00:00000000 00000000  1000        0 "
                      "987654 1 0000000000000000 20 4 30 10 -1";
  const auto established = cp::detail::parse_proc_net_tcp_line(owned, false, 100);
  REQUIRE(established);
  CHECK(established->inode == 987654);
  CHECK(established->uid == 1000u);
  for (const char* bad : {"", "  sl  local_address rem_address   st", "   3: 0100007F:9C40 0100007F:1B58 06",
                          "   3: 0100007F:19C40 0100007F:1B58 06 00000000:00000000 03:00001770",  // port > 65535
                          "   3: 0100007F:9C40 0100007F:1B58 2A 00000000:00000000 03:00001770",   // state 42
                          "   3: 100007F:9C40 0100007F:1B58 06 00000000:00000000 03:00001770"})   // 7 digits
    CHECK_FALSE(cp::detail::parse_proc_net_tcp_line(bad, false, 100));
  CHECK_FALSE(cp::detail::parse_proc_net_tcp_line(line, true, 100));  // an IPv4 address in tcp6
  std::string long_timer(line);
  long_timer.replace(long_timer.find("03:00001770"), 11, "03:FFFFFFFFFFFFFFFF");
  const auto capped = cp::detail::parse_proc_net_tcp_line(long_timer, false, 100);
  REQUIRE(capped);
  CHECK(capped->time_wait_left == 3600s);  // a timer no TIME_WAIT has is capped, not overflowed
}

namespace {
void put32(std::vector<unsigned char>& b, std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
std::uint32_t net_port(std::uint16_t p) { return static_cast<std::uint32_t>((p >> 8) | ((p & 0xff) << 8)); }
}  // namespace

TEST_CASE("census parsers: Windows' TCP table, and a row count larger than the table", "[census-parsers]") {
  std::vector<unsigned char> t(4 + 3 * 24);
  put32(t, 0, 3);
  const auto row = [&](std::size_t i, std::uint32_t state, std::uint16_t local, std::uint16_t remote) {
    put32(t, 4 + i * 24, state);
    const unsigned char loopback[4] = {127, 0, 0, 1};
    std::memcpy(t.data() + 4 + i * 24 + 4, loopback, 4);
    put32(t, 4 + i * 24 + 8, net_port(local));
    std::memcpy(t.data() + 4 + i * 24 + 12, loopback, 4);
    put32(t, 4 + i * 24 + 16, net_port(remote));
  };
  row(0, 11, 40000, 7000);  // TIME_WAIT
  row(1, 1, 40001, 7000);   // CLOSED: holds nothing
  row(2, 5, 50000, 7000);   // ESTABLISHED, outside the range
  std::vector<cp::PortUse> uses;
  REQUIRE(cp::detail::walk_tcp_table(t, false, cp::PortRange::make(40000, 40009).value(), uses));
  REQUIRE(uses.size() == 1);
  CHECK(uses[0].local == cp::Endpoint::loopback_v4(40000));
  CHECK(uses[0].remote == cp::Endpoint::loopback_v4(7000));
  CHECK(uses[0].state == cp::TcpState::time_wait);
  CHECK_FALSE(uses[0].time_wait_left);  // Windows does not say
  put32(t, 0, 4);                       // one row more than the bytes hold
  CHECK_FALSE(cp::detail::walk_tcp_table(t, false, cp::PortRange::make(1, 65535).value(), uses));
  CHECK(uses.size() == 1);  // nothing appended
  CHECK_FALSE(cp::detail::walk_tcp_table(std::span(t.data(), 3), false, cp::PortRange::make(1, 65535).value(), uses));
  std::vector<unsigned char> t6(4 + 56);
  put32(t6, 0, 1);
  t6[4 + 15] = 1;  // ::1
  put32(t6, 4 + 20, net_port(40002));
  t6[4 + 24 + 15] = 1;
  put32(t6, 4 + 44, net_port(7000));
  put32(t6, 4 + 48, 2);  // LISTEN
  REQUIRE(cp::detail::walk_tcp_table(t6, true, cp::PortRange::make(40000, 40009).value(), uses));
  REQUIRE(uses.size() == 2);
  CHECK(uses[1].local == cp::Endpoint::loopback_v6(40002));
  CHECK(uses[1].state == cp::TcpState::listen);
  CHECK_FALSE(uses[1].pid);  // pid 0: none said
  CHECK_FALSE(uses[0].pid);  // a TIME_WAIT has no owner
  put32(t6, 4 + 52, 4242);
  uses.clear();
  REQUIRE(cp::detail::walk_tcp_table(t6, true, cp::PortRange::make(40000, 40009).value(), uses));
  CHECK(uses[0].pid == 4242u);
}

#ifdef __linux__
namespace {
// One inet_diag message (or any type) of `sequence`, appended to a datagram.
void add_message(std::vector<unsigned char>& d, std::uint16_t type, std::uint32_t sequence, std::uint8_t state = 6,
                 std::uint16_t local_port = 40000, std::uint32_t length = NLMSG_LENGTH(sizeof(inet_diag_msg))) {
  nlmsghdr h{};
  h.nlmsg_len = length;
  h.nlmsg_type = type;
  h.nlmsg_seq = sequence;
  inet_diag_msg m{};
  m.idiag_family = AF_INET;
  m.idiag_state = state;
  m.idiag_expires = 41000;
  m.idiag_inode = 5555;  // a TIME_WAIT's is 0 in the kernel; the parser must not pass it on either way
  m.idiag_uid = 1000;
  m.id.idiag_sport = static_cast<std::uint16_t>(net_port(local_port));
  m.id.idiag_dport = static_cast<std::uint16_t>(net_port(7000));
  const unsigned char loopback[4] = {127, 0, 0, 1};
  std::memcpy(m.id.idiag_src, loopback, 4);
  std::memcpy(m.id.idiag_dst, loopback, 4);
  const std::size_t at = d.size();
  d.resize(at + NLMSG_ALIGN(NLMSG_LENGTH(sizeof m)));
  std::memcpy(d.data() + at, &h, sizeof h);
  std::memcpy(d.data() + at + NLMSG_HDRLEN, &m, sizeof m);
}
}  // namespace

TEST_CASE("census parsers: netlink datagrams, only the kernel's and only our sequence", "[census-parsers]") {
  std::vector<unsigned char> d;
  add_message(d, SOCK_DIAG_BY_FAMILY, 7);
  add_message(d, SOCK_DIAG_BY_FAMILY, 8, 6, 40001);  // another request's answer: skipped
  add_message(d, SOCK_DIAG_BY_FAMILY, 7, 99);        // a state TCP has not: skipped
  add_message(d, NLMSG_DONE, 7);
  auto reply = cp::detail::walk_netlink_datagram(d, 0, 7, false);
  CHECK(reply.done);
  CHECK(reply.error == 0);
  REQUIRE(reply.uses.size() == 1);
  CHECK(reply.uses[0].local == cp::Endpoint::loopback_v4(40000));
  CHECK(reply.uses[0].time_wait_left == 41000ms);
  CHECK(reply.uses[0].inode == 0);  // TIME_WAIT: no owner
  CHECK_FALSE(reply.uses[0].uid);
  std::vector<unsigned char> live;
  add_message(live, SOCK_DIAG_BY_FAMILY, 7, 1);  // ESTABLISHED: its inode and uid
  const auto owned = cp::detail::walk_netlink_datagram(live, 0, 7, false);
  REQUIRE(owned.uses.size() == 1);
  CHECK(owned.uses[0].inode == 5555);
  CHECK(owned.uses[0].uid == 1000u);
  const auto stranger = cp::detail::walk_netlink_datagram(d, 4242, 7, false);  // a local process's datagram
  CHECK(stranger.ignored);
  CHECK_FALSE(stranger.done);
  CHECK(stranger.uses.empty());
  // A message whose length runs past the datagram ends the walk; nothing after it is read.
  std::vector<unsigned char> cut;
  add_message(cut, SOCK_DIAG_BY_FAMILY, 7, 6, 40000, 4096);
  add_message(cut, NLMSG_DONE, 7);
  reply = cp::detail::walk_netlink_datagram(cut, 0, 7, false);
  CHECK_FALSE(reply.done);
  CHECK(reply.uses.empty());
  // An error: its errno; one too short to carry one: EPROTO.
  std::vector<unsigned char> error(NLMSG_ALIGN(NLMSG_LENGTH(sizeof(nlmsgerr))));
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_LENGTH(sizeof(nlmsgerr));
  h.nlmsg_type = NLMSG_ERROR;
  h.nlmsg_seq = 7;
  nlmsgerr e{};
  e.error = -ENOENT;
  std::memcpy(error.data(), &h, sizeof h);
  std::memcpy(error.data() + NLMSG_HDRLEN, &e, sizeof e);
  CHECK(cp::detail::walk_netlink_datagram(error, 0, 7, true).error == ENOENT);
  CHECK(cp::detail::walk_netlink_datagram(std::span(error.data(), NLMSG_HDRLEN + 2), 0, 7, true).done == false);
  h.nlmsg_len = NLMSG_HDRLEN;
  std::memcpy(error.data(), &h, sizeof h);
  CHECK(cp::detail::walk_netlink_datagram(error, 0, 7, true).error == EPROTO);
  // A look-up ends at its one socket.
  std::vector<unsigned char> one;
  add_message(one, SOCK_DIAG_BY_FAMILY, 9);
  add_message(one, SOCK_DIAG_BY_FAMILY, 9, 6, 40001);
  reply = cp::detail::walk_netlink_datagram(one, 0, 9, true);
  CHECK(reply.done);
  CHECK(reply.uses.size() == 1);
}
#endif
