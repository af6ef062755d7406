// FixedPortRotation: ports from a fixed range, rotated so that the next connection takes a port
// that is free and has rested longest. The seed's second fix ("if connect fails, bind another
// port and try again"), done better than curl or HAProxy:
//
//  - ports in release order, least recently released first; the next port is drawn at random
//    among the 8 longest-rested ready ones, from a random initial order (RFC 6056), so ports
//    are used evenly and the next source port cannot be guessed;
//  - a port that fails for being busy (bind EADDRINUSE/EACCES, connect EADDRNOTAVAIL/EADDRINUSE
//    — Windows reports 10048 at connect) or whose socket just closed goes to the back with a
//    cooldown stamp (default: the platform's TIME_WAIT), and is not offered again before it;
//    a port whose attempt failed for another reason (refused, timeout) goes back with none;
//  - it asks the kernel (connpolicy.diag's census) which ports of its range are in TIME_WAIT or
//    held by other sockets, and for how long: when it starts (a fresh process knows nothing of
//    the TIME_WAITs its predecessor left), when its memory proves wrong (a port it thought free
//    fails for being busy), when every port looks cooling, and before it offers a port whose
//    rest was only assumed. So the first bind works, even right after a restart. About ports
//    whose rest it guessed from its own close, it asks for exactly that connection (a look_up,
//    ~15 us: the socket tells it the local address just before closing), not for the range (a
//    survey walks every socket of the host: ms);
//  - when every port is cooling (or in use) it says so at once: local_ports_exhausted, with
//    retry_after() = the time until the first port frees (the kernel's TIME_WAIT timer, plus its
//    slack), so the retry policy waits exactly that instead of spinning through bind() calls
//    that cannot succeed;
//  - copies share one ring (it is a handle), and the ring is thread-safe: several connectors and
//    threads never hold the same port in two live sockets.
//
// Use when: the server or a firewall only admits a known set of source ports, or you need
// connections from distinct, bounded ports. With reuse_address (SO_REUSEADDR) a closed port is
// reusable at once (cooldown 0 by default), provided TCP timestamps are on; see FixedPort.
// Windows: ports are bound with SO_EXCLUSIVEADDRUSE unless reuse_address is set (where
// SO_REUSEADDR would let another socket take a port in use); 10048 at connect() rotates like at
// bind(); the assumed TIME_WAIT is 120 s (TcpTimedWaitDelay's default); the census is
// GetExtendedTcpTable, which lists TIME_WAITs without their time left, so such a port is looked
// at again every second rather than waited for exactly.
module;
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
export module connpolicy.bind:fixed_port_rotation;
import connpolicy.core;
import connpolicy.diag;
import :plan;

export namespace connpolicy {

// How long a closed connection's port stays in TIME_WAIT when this side closed first.
#ifdef _WIN32
inline constexpr std::chrono::seconds platform_time_wait{120};  // TcpTimedWaitDelay default
#else
inline constexpr std::chrono::seconds platform_time_wait{60};  // Linux: fixed (TCP_TIMEWAIT_LEN)
#endif

struct RotationOptions {
  // Rest after a port's socket closed normally, or after it failed for being busy. Empty: the
  // platform's TIME_WAIT as a first guess, which the census replaces by the kernel's own timer;
  // 0 for closes when reuse_address is set and TCP timestamps are on. A value given here is a
  // minimum rest the census may lengthen but never shorten (a firewall's rule, say). Must be 0 or
  // more; a huge one saturates (the port never comes back).
  std::optional<std::chrono::milliseconds> cooldown;
  bool reuse_address = false;      // SO_REUSEADDR before each bind (see FixedPort)
  std::optional<Endpoint> source;  // local address (its port is ignored); empty: any
  std::uint64_t seed = 0;          // for the random order and picks; 0: from std::random_device
  // Ask the kernel which ports are in TIME_WAIT or in use (see above). On by default because a
  // bind that fails costs a syscall and a cooldown, a connect that fails costs a handshake, and a
  // guessed 60 s rest costs a port for a minute. A census is not free: 2-5 ms on a quiet host,
  // 10-25 ms with 25 000 sockets (the kernel walks all of them; docs/benchmarks.md, P6). So it is
  // taken rarely (at start, after a surprise, when every port looks cooling, before offering a port
  // whose rest was guessed; at most every 10 ms), without the rotation's lock held.
  // Turn off where the census cannot be right: a test with a virtual clock and a fake system
  // (pass a FakeCensus instead), or ports that live in another network namespace.
  bool use_census = true;
  PortCensus* census = nullptr;  // nullptr: kernel_census() (netlink, else /proc/net/tcp)
};

class FixedPortRotation {
 public:
  static constexpr bool can_rebind = true;

  // FixedPortRotation{40000, 40009}: the range is checked at compile time.
  consteval FixedPortRotation(int first, int last, RotationOptions options = {})
      : range_(first, last), options_(options) {}
  // A range checked before (PortRange{...} at compile time, PortRange::make/parse at run time),
  // and options that may name run-time things (a census, a source address).
  FixedPortRotation(PortRange range, RotationOptions options = {}) noexcept : range_(range), options_(options) {}
  // Ports known only at run time: invalid_argument when first > last or a port is outside 1-65535,
  // or when an option means nothing (see check()).
  static expected<FixedPortRotation, NetError> make(long first, long last, RotationOptions options = {});
  // invalid_argument when an option means nothing: a negative cooldown. The Connector runs it
  // before it connects.
  expected<void, NetError> check() const;

  // Copies share the ring.
  FixedPortRotation(const FixedPortRotation& other);
  FixedPortRotation& operator=(const FixedPortRotation& other);
  ~FixedPortRotation();

  // The plan, after the census when the rotation wants one (see above): for a driver, which
  // answers ask.question where a thread may block (never an io thread) and plans again. Never
  // blocks on the census itself.
  expected<BindPlan, NetError> plan(const Endpoint& remote, CensusAsk& ask);
  // The same with the census asked on the calling thread (it may block for milliseconds): for
  // direct callers, such as a test.
  expected<BindPlan, NetError> plan(const Endpoint& remote);
  void failed(const BindPlan& plan, const NetError& error);

  // How time passes for the ring (rests, the census's timers): a Connector hands it its one
  // clock (ConnectorOptions::timer) when it is made; the system's until then. Copies share it.
  // Use when: a test drives the rotation itself on a ManualTimer.
  void use_clock(Timer& clock);

  // What the ring looks like now (for tests, metrics and logs).
  struct Snapshot {
    std::size_t in_use = 0;                                  // lent to live sockets or attempts
    std::size_t cooling = 0;                                 // resting until their cooldown ends
    std::size_t ready = 0;                                   // can be offered now
    std::optional<std::chrono::milliseconds> next_ready_in;  // when the first cooling one frees
    std::optional<std::uint16_t> next_port;                  // the port plan() would offer now
    std::size_t surveys = 0;                                 // censuses of the whole range so far
    std::size_t look_ups = 0;                                // look_ups of its own closed connections
    std::string census_problem;                              // why the last one failed, if it did
  };
  Snapshot snapshot() const;
  const PortRange& range() const noexcept { return range_; }
  const RotationOptions& options() const noexcept { return options_; }

 private:
  struct State;
  const std::shared_ptr<State>& state() const;  // made on first use, then shared by every copy

  PortRange range_;
  RotationOptions options_;
  mutable std::shared_ptr<State> state_;
  mutable std::once_flag made_;
};

}  // namespace connpolicy
