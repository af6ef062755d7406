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

Endpoint endpoint_of(std::uint8_t family, const __be32 (&address)[4], __be16 port) {
  if (family == AF_INET) {
    std::array<std::uint8_t, 4> bytes;
    std::memcpy(bytes.data(), address, 4);
    return Endpoint::ipv4(bytes, ntohs(port));
  }
  std::array<std::uint8_t, 16> bytes;
  std::memcpy(bytes.data(), address, 16);
  return Endpoint::ipv6(bytes, ntohs(port));
}

PortUse use_of(const inet_diag_msg& m) {
  PortUse use;
  use.local = endpoint_of(m.idiag_family, m.id.idiag_src, m.id.idiag_sport);
  use.remote = endpoint_of(m.idiag_family, m.id.idiag_dst, m.id.idiag_dport);
  use.state = static_cast<TcpState>(m.idiag_state);
  if (use.state == TcpState::time_wait) use.time_wait_left = std::chrono::milliseconds(m.idiag_expires);
  return use;
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

// What a message handler says: read on, or the answer is complete.
enum class Heard : bool { more, complete };

// The errno an NLMSG_ERROR carries (EPROTO when it is too short to say).
int error_of(const nlmsghdr& h, std::size_t length) {
  return length >= NLMSG_LENGTH(sizeof(nlmsgerr)) ? -static_cast<const nlmsgerr*>(NLMSG_DATA(&h))->error : EPROTO;
}

// Receives until `on_message(header, length)` says the answer is complete; it sees every message
// of our `sequence` and may fail. Bounded: `max_reads` reads, each within the 2 s receive timeout.
template <class OnMessage>
expected<void, NetError> receive(const NetlinkSocket& nl, std::uint32_t sequence, int max_reads, int& interrupts,
                                 OnMessage&& on_message) {
  alignas(nlmsghdr) static thread_local std::array<char, 65536> buffer;
  for (int reads = 0; reads < max_reads; ++reads) {
    const ssize_t got = ::recv(nl.fd(), buffer.data(), buffer.size(), 0);
    if (got < 0) {
      if (errno == EINTR && ++interrupts < 100) continue;
      return unexpected(failure(errno, errno == EAGAIN ? "no answer within 2 s" : "recv"));
    }
    if (got == 0) return unexpected(failure(EPROTO, "the kernel closed the socket mid-answer"));
    // Walk the messages by hand (NLMSG_OK/NLMSG_NEXT mix signed and unsigned lengths).
    const auto total = static_cast<std::size_t>(got);
    std::size_t length = 0;
    for (std::size_t offset = 0; total - offset >= sizeof(nlmsghdr); offset += NLMSG_ALIGN(length)) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buffer.data() + offset);
      length = h->nlmsg_len;
      if (length < sizeof(nlmsghdr) || length > total - offset) break;  // truncated: read on
      if (h->nlmsg_seq != sequence) continue;
      expected<Heard, NetError> heard = on_message(*h, length);
      if (!heard) return unexpected(std::move(heard).error());
      if (*heard == Heard::complete) return {};
    }
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
  return receive(nl, sequence, max_reads, interrupts,
                 [&](const nlmsghdr& h, std::size_t length) -> expected<Heard, NetError> {
                   if (h.nlmsg_type == NLMSG_DONE) return Heard::complete;
                   if (h.nlmsg_type == NLMSG_ERROR)
                     return unexpected(failure(error_of(h, length), family == AF_INET    ? "IPv4 dump"
                                                                    : family == AF_INET6 ? "IPv6 dump"
                                                                                         : "TCPDIAG_GETSOCK dump"));
                   if ((h.nlmsg_type != SOCK_DIAG_BY_FAMILY && h.nlmsg_type != TCPDIAG_GETSOCK) ||
                       length < NLMSG_LENGTH(sizeof(inet_diag_msg)))
                     return Heard::more;
                   const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(&h));
                   if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6) return Heard::more;
                   PortUse use = use_of(*m);
                   if (range.contains(use.local.port()))
                     out.push_back(use);  // the kernel filtered; this keeps us honest
                   return Heard::more;
                 });
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
    auto heard =
        receive(nl, sequence, 16, interrupts, [&](const nlmsghdr& h, std::size_t length) -> expected<Heard, NetError> {
          if (h.nlmsg_type == NLMSG_ERROR) {
            const int error = error_of(h, length);
            if (error == ENOENT) return Heard::complete;
            return unexpected(failure(error, "lookup of " + pair.local.to_string() + " -> " + pair.remote.to_string()));
          }
          if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY && length >= NLMSG_LENGTH(sizeof(inet_diag_msg)))
            found.push_back(use_of(*static_cast<const inet_diag_msg*>(NLMSG_DATA(&h))));
          return Heard::complete;
        });
    if (!heard) return unexpected(std::move(heard).error());
  }
  return found;
}
#endif

}  // namespace connpolicy::detail
