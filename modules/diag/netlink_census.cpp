// The census over netlink sock_diag (inet_diag). survey: a dump filtered in the kernel to the
// range's ports by a two-instruction bytecode, so only the range's sockets are copied out, but the
// kernel still walks every TCP socket of the host to test them (docs/benchmarks.md, P6).
// look_up: one request per known connection, answered from the socket hash without a walk.
module;
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#ifdef __linux__
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#endif
module connpolicy.diag;
import connpolicy.core;

namespace connpolicy::detail {

#ifndef __linux__
expected<std::vector<PortUse>, NetError> survey_netlink(PortRange) {
  return unexpected(NetError(Step::census, make_system_error(EOPNOTSUPP)).with_detail("netlink is Linux's"));
}
expected<std::vector<PortUse>, NetError> look_up_netlink(std::span<const SocketPair>) {
  return unexpected(NetError(Step::census, make_system_error(EOPNOTSUPP)).with_detail("netlink is Linux's"));
}
#else
namespace {

NetError failure(int error, std::string what) {
  return NetError(Step::census, make_system_error(error)).with_detail("netlink sock_diag: " + std::move(what));
}

class NetlinkSocket {
 public:
  NetlinkSocket() noexcept : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) {}
  ~NetlinkSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

// The kernel walks its whole established-socket hash table once per dump (262 144 buckets on a
// 24 GiB machine: about 2 ms), whatever the filter. The older TCPDIAG_GETSOCK request dumps
// IPv4 and IPv6 in one walk (AF_UNSPEC), so it is asked first; SOCK_DIAG_BY_FAMILY, one dump per
// family, where a kernel no longer offers it.
template <class Request>
struct DumpRequest {
  nlmsghdr header;
  Request request;
  rtattr filter_header;
  inet_diag_bc_op filter[4];
};
static_assert(sizeof(DumpRequest<inet_diag_req_v2>) ==
                  NLMSG_LENGTH(sizeof(inet_diag_req_v2)) + RTA_LENGTH(4 * sizeof(inet_diag_bc_op)),
              "the kernel reads the request as header, request, attribute, bytecode without padding");
static_assert(sizeof(DumpRequest<inet_diag_req>) ==
              NLMSG_LENGTH(sizeof(inet_diag_req)) + RTA_LENGTH(4 * sizeof(inet_diag_bc_op)));

constexpr std::uint8_t both_families = AF_UNSPEC;

template <class Request>
DumpRequest<Request> make_request(std::uint8_t family, PortRange range, std::uint32_t sequence) {
  DumpRequest<Request> r{};
  r.header.nlmsg_len = sizeof r;
  r.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  r.header.nlmsg_seq = sequence;
  if constexpr (std::is_same_v<Request, inet_diag_req>) {
    r.header.nlmsg_type = TCPDIAG_GETSOCK;  // AF_UNSPEC: both families in one walk
  } else {
    r.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    r.request.sdiag_family = family;
    r.request.sdiag_protocol = IPPROTO_TCP;
  }
  r.request.idiag_states = ~0u;  // every state, TIME_WAIT and NEW_SYN_RECV included
  r.filter_header.rta_len = RTA_LENGTH(sizeof r.filter);
  r.filter_header.rta_type = INET_DIAG_REQ_BYTECODE;
  // sport >= first && sport <= last. Each test jumps `yes` bytes on success; on failure `no`
  // bytes, here 4 past the end, which the kernel reads as "reject".
  r.filter[0] = {INET_DIAG_BC_S_GE, 8, 20};
  r.filter[1] = {0, 0, range.first()};
  r.filter[2] = {INET_DIAG_BC_S_LE, 8, 12};
  r.filter[3] = {0, 0, range.last()};
  return r;
}

bool send_request(const NetlinkSocket& nl, const void* request, std::size_t size, int& interrupts) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(nl.fd(), request, size, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR && ++interrupts < 100);
  return sent >= 0;
}

bool set_receive_timeout(const NetlinkSocket& nl) {
  const timeval two_seconds{2, 0};
  return ::setsockopt(nl.fd(), SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds) == 0;
}

// Receives datagrams until the answer to `sequence` is complete, appending its sockets to `out`,
// and returns the errno of an NLMSG_ERROR that ended it (0: none). Only the kernel's datagrams
// (sender port id 0) are read (walk_netlink_datagram, census_parsers.cpp): any local process may
// send to our socket. Bounded: `max_reads` reads, each within the 2 s receive timeout.
expected<int, NetError> receive(const NetlinkSocket& nl, std::uint32_t sequence, bool single_answer, int max_reads,
                                int& interrupts, std::vector<PortUse>& out) {
  static thread_local std::array<unsigned char, 65536> buffer;
  for (int reads = 0; reads < max_reads; ++reads) {
    sockaddr_nl from{};
    socklen_t from_length = sizeof from;
    const ssize_t got =
        ::recvfrom(nl.fd(), buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_length);
    if (got < 0) {
      if (errno == EINTR && ++interrupts < 100) continue;
      return unexpected(failure(errno, errno == EAGAIN ? "no answer within 2 s" : "recvfrom"));
    }
    if (got == 0) return unexpected(failure(EPROTO, "the kernel closed the socket mid-answer"));
    const bool from_netlink = from_length >= sizeof from && from.nl_family == AF_NETLINK;
    NetlinkReply reply = walk_netlink_datagram({buffer.data(), static_cast<std::size_t>(got)},
                                               from_netlink ? from.nl_pid : ~0u, sequence, single_answer);
    out.insert(out.end(), reply.uses.begin(), reply.uses.end());
    if (reply.done) return reply.error;
  }
  return unexpected(failure(EPROTO, "the answer did not end"));
}

// One family's dump into `out`. The kernel ends a dump with NLMSG_DONE.
template <class Request>
expected<void, NetError> dump(const NetlinkSocket& nl, std::uint8_t family, PortRange range, std::uint32_t sequence,
                              std::vector<PortUse>& out) {
  const auto request = make_request<Request>(family, range, sequence);
  int interrupts = 0;
  if (!send_request(nl, &request, sizeof request, interrupts)) return unexpected(failure(errno, "sendto"));
  constexpr int max_reads = 1 << 20;  // 64 GiB of answers: only a broken kernel gets here
  std::vector<PortUse> heard;
  auto error = receive(nl, sequence, false, max_reads, interrupts, heard);
  if (!error) return unexpected(std::move(error).error());
  if (*error != 0)
    return unexpected(failure(*error, family == AF_INET    ? "IPv4 dump"
                                      : family == AF_INET6 ? "IPv6 dump"
                                                           : "TCPDIAG_GETSOCK dump"));
  for (const PortUse& use : heard)
    if (range.contains(use.local.port())) out.push_back(use);  // the kernel filtered; this keeps us honest
  return {};
}

}  // namespace

expected<std::vector<PortUse>, NetError> survey_netlink(PortRange range) {
  NetlinkSocket nl;
  if (nl.fd() < 0) return unexpected(failure(errno, "socket(AF_NETLINK, NETLINK_SOCK_DIAG)"));
  if (!set_receive_timeout(nl)) return unexpected(failure(errno, "SO_RCVTIMEO"));
  std::vector<PortUse> uses;
  static std::atomic<bool> one_walk_refused{false};
  if (!one_walk_refused.load(std::memory_order_relaxed)) {
    auto r = dump<inet_diag_req>(nl, both_families, range, 1, uses);
    if (r) return uses;
    const int e = r.error().code().value();
    if (e != EINVAL && e != ENOENT && e != EOPNOTSUPP) return unexpected(std::move(r).error());
    one_walk_refused.store(true, std::memory_order_relaxed);
    uses.clear();
  }
  if (auto r = dump<inet_diag_req_v2>(nl, AF_INET, range, 2, uses); !r) return unexpected(std::move(r).error());
  if (auto r = dump<inet_diag_req_v2>(nl, AF_INET6, range, 3, uses); !r) {
    // A kernel without IPv6 has no IPv6 sockets to report.
    if (r.error().code().value() != EAFNOSUPPORT && r.error().code().value() != ENOENT)
      return unexpected(std::move(r).error());
  }
  return uses;
}

// Not a dump: each request names one socket by its four ends, and the kernel answers from its
// hash table (inet_diag_find_one_icsk: established and TIME_WAIT sockets alike) with the socket
// or ENOENT. Requests go one at a time, so a lost answer cannot be mistaken for another's.
expected<std::vector<PortUse>, NetError> look_up_netlink(std::span<const SocketPair> pairs) {
  std::vector<PortUse> found;
  if (pairs.empty()) return found;
  NetlinkSocket nl;
  if (nl.fd() < 0) return unexpected(failure(errno, "socket(AF_NETLINK, NETLINK_SOCK_DIAG)"));
  if (!set_receive_timeout(nl)) return unexpected(failure(errno, "SO_RCVTIMEO"));
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } r{};
  static_assert(sizeof r == NLMSG_LENGTH(sizeof(inet_diag_req_v2)));
  std::uint32_t sequence = 0;
  int interrupts = 0;
  for (const SocketPair& pair : pairs) {
    if (pair.local.family() != pair.remote.family()) continue;  // no such socket can exist
    const bool v4 = pair.local.is_v4();
    r = {};
    r.header.nlmsg_len = sizeof r;
    r.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    r.header.nlmsg_flags = NLM_F_REQUEST;
    r.header.nlmsg_seq = ++sequence;
    r.request.sdiag_family = v4 ? AF_INET : AF_INET6;
    r.request.sdiag_protocol = IPPROTO_TCP;
    r.request.idiag_states = ~0u;
    r.request.id.idiag_sport = htons(pair.local.port());
    r.request.id.idiag_dport = htons(pair.remote.port());
    std::memcpy(r.request.id.idiag_src, pair.local.bytes().data(), v4 ? 4 : 16);
    std::memcpy(r.request.id.idiag_dst, pair.remote.bytes().data(), v4 ? 4 : 16);
    r.request.id.idiag_if = pair.local.scope_id();
    r.request.id.idiag_cookie[0] = r.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (!send_request(nl, &r, sizeof r, interrupts)) return unexpected(failure(errno, "sendto"));
    // One answer: the socket, or ENOENT when the kernel has let it go. Stray messages are skipped.
    auto error = receive(nl, sequence, true, 16, interrupts, found);
    if (!error) return unexpected(std::move(error).error());
    if (*error != 0 && *error != ENOENT)
      return unexpected(failure(*error, "lookup of " + pair.local.to_string() + " -> " + pair.remote.to_string()));
  }
  return found;
}
#endif

}  // namespace connpolicy::detail
