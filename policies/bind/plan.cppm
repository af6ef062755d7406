// The bind policy contract: before each attempt the Connector asks the policy for a BindPlan
// (which local address to bind, if any, and which options to set), and tells it when an attempt
// with that plan failed. A plan may carry a PortLease, which the Connector hands to the Socket so
// the policy hears when the socket closes.
module;
#include <array>
#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
export module connpolicy.bind:plan;
import connpolicy.core;

export namespace connpolicy {

struct OptionRequest {
  SocketOption option;
  int value = 1;
  bool required = true;  // false: best effort (e.g. IP_BIND_ADDRESS_NO_PORT on an old kernel)
};

struct BindPlan {
  static constexpr std::size_t max_options = 4;

  std::optional<Endpoint> local;     // bind() to this before connect(); empty: no bind()
  std::shared_ptr<PortLease> lease;  // goes into the Socket; told when it closes
  std::array<OptionRequest, max_options> options{};
  std::uint8_t option_count = 0;

  constexpr BindPlan& add(OptionRequest request) noexcept {
    if (option_count < max_options) options[option_count++] = request;
    return *this;
  }
  constexpr std::span<const OptionRequest> option_list() const noexcept { return {options.data(), option_count}; }
};

// What the Connector needs of a bind policy.
//   can_rebind   true when plan() may offer another local port after a port failure, so
//                "rebind" is worth asking for (FixedPortRotation); false for the others.
//   plan(remote) the local side for one attempt towards `remote`, or an error (e.g. every port
//                of a rotation is cooling down: local_ports_exhausted, with retry_after()).
//   failed(plan, error)  the attempt made with `plan` failed at error.step().
//   use_clock(timer) (optional) the connector's one clock (ConnectorOptions::timer), handed over
//                when the connector is made, for a policy that keeps time (rests, cooldowns).
//   can_change_address (optional) true when plan() may offer another local *address* after a
//                bind failed with address_not_available (SourceAddressPool): the error policy may
//                then rebind instead of giving up (Failure::can_change_address).
// A policy shared by threads (copies of one FixedPortRotation) must make these thread-safe.
template <class B>
concept BindPolicy = std::copy_constructible<B> &&
                     requires(B& policy, const Endpoint& remote, const BindPlan& plan, const NetError& error) {
                       { B::can_rebind } -> std::convertible_to<bool>;
                       { policy.plan(remote) } -> std::same_as<expected<BindPlan, NetError>>;
                       { policy.failed(plan, error) } -> std::same_as<void>;
                     };

// A question about the host's sockets that a bind policy wants answered before it plans
// (FixedPortRotation's census: a survey walks every socket of the host, milliseconds among tens of
// thousands). A policy never asks it itself from plan(): the driver answers it where a thread may
// block (the blocking Connector inline; the Asio driver on a helper thread, never its io thread),
// then asks for the plan again. Several connects may hold one question: the first to answer asks,
// the others wait for that answer. answer() may throw (a user's census): the connect then ends
// with that exception, everything given back first.
class CensusQuestion {
 public:
  virtual ~CensusQuestion() = default;
  virtual void answer() = 0;
};

// Between a policy's plan(remote, ask) and the driver, for one attempt. The policy sets
// `question` when it wants the census first (what plan() returns then is ignored); the driver
// answers it, sets `answered`, and calls plan(remote, ask) again, which asks nothing more.
struct CensusAsk {
  std::shared_ptr<CensusQuestion> question;
  bool answered = false;
};

// A bind policy that lets its driver ask the census (the optional plan(remote, ask)). The core
// calls that form only; the one-argument plan() of such a policy answers its question inline,
// for direct callers (tests, a driver of your own).
template <class B>
concept AsksCensus = requires(B& policy, const Endpoint& remote, CensusAsk& ask) {
  { policy.plan(remote, ask) } -> std::same_as<expected<BindPlan, NetError>>;
};

// Whether `B` says it can offer another local address (the optional can_change_address).
template <class B>
constexpr bool can_change_address() noexcept {
  if constexpr (requires { B::can_change_address; })
    return static_cast<bool>(B::can_change_address);
  else
    return false;
}

// How a policy that binds a port of its choosing claims it. reuse_address: SO_REUSEADDR (bind
// through TIME_WAIT). Otherwise, on Windows, SO_EXCLUSIVEADDRUSE: there SO_REUSEADDR on *another*
// socket could take over a port in use, and only an exclusive bind prevents it (Linux binds are
// exclusive already, so nothing is set there). The two cannot be combined on Windows.
constexpr void claim_port(BindPlan& plan, bool reuse_address) noexcept {
  if (reuse_address) {
    plan.add({SocketOption::reuse_address, 1, true});
  } else {
#ifdef _WIN32
    plan.add({SocketOption::exclusive_address, 1, true});
#endif
  }
}

// The unspecified address of `remote`'s family: what "bind any address" means for it.
constexpr Endpoint any_address_for(const Endpoint& remote, std::uint16_t port = 0) noexcept {
  return remote.is_v4() ? Endpoint::any_v4(port) : Endpoint::any_v6(port);
}

}  // namespace connpolicy
