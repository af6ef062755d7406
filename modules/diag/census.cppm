// connpolicy.diag: ask the kernel which local ports of a range are in use or in TIME_WAIT,
// towards which destination, and how long each TIME_WAIT has left.
//
// Why: a client that binds its own ports (FixedPort, FixedPortRotation) fails when it does not
// know a port still sits in TIME_WAIT from an earlier connection - the seed's 10048. Memory of
// its own closes is not enough: a fresh process knows nothing of what its predecessor left, and
// another program may hold a port. The kernel knows, exactly: netlink sock_diag (inet_diag) gives
// every socket's state and, for TIME_WAIT, the milliseconds left on its timer; /proc/net/tcp{,6}
// gives the same in 10 ms ticks where netlink is refused (some sandboxes). Windows' TCP table
// (GetExtendedTcpTable) gives the states but not the time left; a socket that is only bound is
// in /proc and Windows' table not at all (recent kernels' netlink lists it as CLOSE).
//
// Use when: you bind ports yourself and want to know which will bind, and when. FixedPortRotation
// uses it by default; `connpolicy-census`-style tools and tests can call KernelCensus directly:
//
//   auto census = connpolicy::kernel_census().survey(connpolicy::PortRange{40000, 40999});
//   for (const connpolicy::PortUse& use : census->uses) ...   // use.state, use.time_wait_left
//
// A survey walks every TCP socket of the host (10-25 ms with 25 000 sockets). When you know the
// connections you ask about (your own, closed a moment ago), look_up() asks for exactly those:
// one hash lookup each in the kernel, about 2 us, however many sockets the host has.
//
//   connpolicy::SocketPair mine{socket.local_endpoint().value(), server};  // before closing it
//   auto left = connpolicy::kernel_census().look_up({&mine, 1});           // after: TIME_WAIT?
//
// The census is a snapshot: a port it reports free can be taken a moment later. Binding still
// decides; the census only makes the first choice a good one.
module;
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
export module connpolicy.diag;
import connpolicy.core;

export namespace connpolicy {

// TCP states, numbered as the kernel numbers them (include/net/tcp_states.h).
enum class TcpState : std::uint8_t {
  established = 1,
  syn_sent,
  syn_recv,
  fin_wait1,
  fin_wait2,
  time_wait,
  close,
  close_wait,
  last_ack,
  listen,
  closing,
  new_syn_recv,
};
std::string_view to_string(TcpState state) noexcept;

// One socket that holds a local port of the surveyed range.
struct PortUse {
  Endpoint local;   // address and port (0.0.0.0 or :: when bound to any address and not connected)
  Endpoint remote;  // unspecified for a listening socket
  TcpState state = TcpState::established;
  // TIME_WAIT only: how long until the kernel frees the port (ms from netlink, 10 ms ticks from
  // /proc; the kernel's timer may fire a little later than this says). Empty where the system
  // does not say (Windows): the port is held for an unknown while, at most its TIME_WAIT.
  std::optional<std::chrono::milliseconds> time_wait_left;
  // Who holds it. Linux: the socket's inode and the uid that owns it (sock_diag, /proc/net/tcp;
  // 0 and empty for a TIME_WAIT, which no process holds); Windows: the owning process id from
  // the table. find_socket_owners() turns them into a process.
  std::uint64_t inode = 0;
  std::optional<std::uint32_t> uid{};
  std::optional<std::uint32_t> pid{};
};

enum class CensusSource : std::uint8_t {
  netlink,       // Linux: sock_diag, with each TIME_WAIT's time left
  proc_net_tcp,  // Linux: /proc/net/tcp{,6}, with time left in 10 ms ticks
  tcp_table,     // Windows: GetExtendedTcpTable; TIME_WAIT listed without its time left
};
std::string_view to_string(CensusSource source) noexcept;

struct Census {
  std::vector<PortUse> uses;  // IPv4 and IPv6, in the kernel's order
  CensusSource source = CensusSource::netlink;
  // net.ipv4.tcp_timestamps when the census was taken (empty: unknown). With timestamps, a port
  // in TIME_WAIT can be reused at once by a socket with SO_REUSEADDR; without, connect() to the
  // same destination fails EADDRNOTAVAIL until the TIME_WAIT ends.
  std::optional<bool> tcp_timestamps;
  // How much later than time_wait_left the port may really be freed (time_wait_timer_slack()
  // for the kernel's census; what a fake says).
  std::chrono::milliseconds time_wait_slack{0};
};

// Who holds a socket: "pid 4242 (loginclient), uid 1000", or why that cannot be said.
struct SocketOwner {
  enum class Unknown : std::uint8_t {
    none,        // pid (and command) known
    time_wait,   // no process: the kernel holds a TIME_WAIT
    needs_root,  // held by a process whose descriptors this user may not read (another user's)
    not_found,   // no process has it open (it closed meanwhile)
    not_asked,   // find_socket_owners() was not asked
  };
  std::optional<std::uint32_t> pid{};
  std::string command;               // Linux: /proc/PID/comm; Windows: the image's file name
  std::optional<std::uint32_t> uid;  // Linux: the socket's owner, as the kernel says (any user's)
  std::size_t other_holders = 0;     // more processes with it open (a fork, a handed-down descriptor)
  Unknown unknown = Unknown::not_asked;
};
// "pid 4242 (loginclient), uid 1000", "no process (TIME_WAIT: the kernel holds it)",
// "unknown (needs root), uid 0".
std::string to_string(const SocketOwner& owner);

// The owners of a census's sockets, found in one pass (find_socket_owners).
struct SocketOwners {
  SocketOwner of(const PortUse& use) const;

  std::unordered_map<std::uint64_t, SocketOwner> by_inode;  // Linux
  std::unordered_map<std::uint32_t, std::string> by_pid;    // Windows: image names
  std::size_t processes = 0;                                // Linux: processes looked at
  std::size_t unreadable = 0;                               // of them, whose descriptors were not ours to read
  bool looked = false;
};

// Linux: one pass over /proc/PID/fd, as `ss -p` and `lsof` do, matching the sockets' inodes
// (about 4 us per descriptor of every process, docs/benchmarks.md P6; as root every process's, otherwise one's own).
// Windows: the image name of each owning pid the table gave. Use when a person asks who holds a
// port; a program that only needs to know whether a port is free needs no owners.
SocketOwners find_socket_owners(std::span<const PortUse> uses);

// One connection by its two ends: what look_up() asks about.
struct SocketPair {
  Endpoint local;  // the address it really used (Socket::local_endpoint()), not 0.0.0.0
  Endpoint remote;
};

// Who answers "which ports are in use": the kernel (KernelCensus), or a fake in tests
// (connpolicy.testing's FakeCensus). survey() and look_up() may be called from several threads.
class PortCensus {
 public:
  // Every socket whose local port lies in `range`.
  virtual expected<Census, NetError> survey(PortRange range) = 0;
  // The sockets with exactly these two ends that the kernel still has (TIME_WAIT included); the
  // others are left out of the answer. This default surveys the ports the pairs span and keeps
  // the matches: right for any census, and as costly as a survey. KernelCensus asks netlink for
  // each pair instead.
  virtual expected<Census, NetError> look_up(std::span<const SocketPair> pairs);

 protected:
  PortCensus() = default;
  PortCensus(const PortCensus&) = default;
  PortCensus& operator=(const PortCensus&) = default;
  ~PortCensus() = default;
};

enum class CensusMethod : std::uint8_t {
  automatic,     // netlink; /proc/net/tcp{,6} when netlink is refused (then netlink is not asked again)
  netlink,       // netlink sock_diag only: one dump per address family, filtered by the kernel
  proc_net_tcp,  // /proc/net/tcp and /proc/net/tcp6 only: reads every TCP socket of the namespace
};

// The kernel's census of TCP sockets: Linux (netlink, /proc) and Windows (GetExtendedTcpTable;
// `method` is ignored there). Elsewhere survey() fails with operation_not_supported and
// FixedPortRotation falls back to its own memory.
class KernelCensus final : public PortCensus {
 public:
  explicit KernelCensus(CensusMethod method = CensusMethod::automatic) noexcept : method_(method) {}
  KernelCensus(const KernelCensus& other) noexcept : PortCensus(other), method_(other.method_) {}
  expected<Census, NetError> survey(PortRange range) override;
  // netlink: one request per pair, answered from the kernel's socket hash (no walk). Where netlink
  // is refused or not chosen: the default (a survey of /proc/net/tcp, filtered).
  expected<Census, NetError> look_up(std::span<const SocketPair> pairs) override;
  CensusMethod method() const noexcept { return method_; }

 private:
  CensusMethod method_;
  std::atomic<bool> netlink_refused_{false};
};

// Whether a census's socket end and one of ours are the same: family, address bytes and port, an
// IPv4-mapped IPv6 address being its IPv4 address (the kernel does not report an IPv6 scope id,
// so it is not compared).
bool same_end(const Endpoint& a, const Endpoint& b) noexcept;

// One KernelCensus (automatic) for the process: what FixedPortRotation asks unless told otherwise.
PortCensus& kernel_census() noexcept;

// How much later than a census's time_wait_left the kernel may really free the port. Linux runs
// the 60 s TIME_WAIT timer on its timer wheel, which rounds a timer that long up to its level's
// granularity: 512 ticks at HZ=250 (2 s; measured here: freed 0.5-1.8 s after the time
// reported), 4096 at HZ=1000 (4 s). Computed from this kernel's tick (CLOCK_MONOTONIC_COARSE's
// resolution), plus two ticks for the reading and the timer's own run. 0 off Linux.
std::chrono::milliseconds time_wait_timer_slack() noexcept;

// net.ipv4.tcp_timestamps of this network namespace: true when on (1 or 2), empty when unknown.
std::optional<bool> tcp_timestamps_enabled();

// net.ipv4.ip_local_port_range of this network namespace: the ports the kernel picks from when a
// connect() or bind(:0) leaves the choice to it. Linux only (an error elsewhere).
expected<PortRange, NetError> ephemeral_port_range();

}  // namespace connpolicy

// The census reads what another party wrote: the kernel's netlink datagrams, /proc's text,
// Windows' table. These walkers check every length before they read, and are exported (in
// detail: not API, may change) so fuzz targets and tests can give them any bytes.
export namespace connpolicy::detail {
// One line of /proc/net/tcp or /proc/net/tcp6 (not the header): empty when it is not in the
// kernel's format. `ticks_per_second`: the unit of the timer column (sysconf(_SC_CLK_TCK)).
std::optional<PortUse> parse_proc_net_tcp_line(std::string_view line, bool v6, long ticks_per_second);
// The rows of a GetExtendedTcpTable answer (TCP_TABLE_OWNER_PID_ALL; MIB_TCPTABLE_OWNER_PID, or
// MIB_TCP6TABLE_OWNER_PID when `v6`) whose local port is in `range`, appended to `out`. false,
// with nothing appended, when the row count promises more rows than `table` holds. Any platform.
bool walk_tcp_table(std::span<const unsigned char> table, bool v6, PortRange range, std::vector<PortUse>& out);
// What one netlink datagram said about our request.
struct NetlinkReply {
  std::vector<PortUse> uses;  // inet_diag messages of our sequence, IPv4 and IPv6 only
  bool done = false;          // NLMSG_DONE, NLMSG_ERROR, or (single_answer) the one socket
  int error = 0;              // the errno of an NLMSG_ERROR (EPROTO when it is too short to say)
  bool ignored = false;       // not from the kernel (sender port id != 0): nothing in it was read
};
// Walks one datagram from netlink port `sender` (0: the kernel). Messages of another sequence
// number are skipped; a datagram from any other sender is ignored whole (a local process can
// send to our netlink socket); a message whose length runs past the datagram ends the walk.
// `single_answer`: a look-up, answered by one socket message. Linux only.
#ifdef __linux__
NetlinkReply walk_netlink_datagram(std::span<const unsigned char> datagram, std::uint32_t sender,
                                   std::uint32_t sequence, bool single_answer);
#endif
}  // namespace connpolicy::detail
// Within the module: the two ways to ask (census.cpp picks).
namespace connpolicy::detail {
expected<std::vector<PortUse>, NetError> survey_netlink(PortRange range);
expected<std::vector<PortUse>, NetError> survey_proc_net_tcp(PortRange range);
expected<std::vector<PortUse>, NetError> look_up_netlink(std::span<const SocketPair> pairs);
expected<std::vector<PortUse>, NetError> survey_tcp_table(PortRange range);  // Windows only
}  // namespace connpolicy::detail
