module;
#include <optional>
#include <string>
#include <system_error>
module connpolicy.core;

namespace connpolicy {
namespace {

bool port_chosen_by_kernel(const std::optional<Endpoint>& local) noexcept { return !local || local->port() == 0; }

std::string code_text(const std::error_code& code) {
  std::string name(code_name(code));
  std::string number;
  if (code.category() == winsock_category())
    number = "Winsock " + std::to_string(code.value());
  else if (code.category() == library_category())
    return name;
  else if (code.category() == resolver_category())
    number = "getaddrinfo " + std::to_string(code.value());
  else if (code.category() == std::generic_category())
    number = "errno " + std::to_string(code.value());
  else
#ifdef _WIN32
    number = "Winsock " + std::to_string(code.value());
#else
    number = "errno " + std::to_string(code.value());
#endif
  if (name.empty()) return number + ": " + code.message();
  return name + ", " + number;
}

// What to try, per condition. Says the mechanism, then the fix, naming our policies.
std::string hint(Errc condition, const std::optional<Endpoint>& local, const std::optional<Endpoint>& remote) {
  const std::string port =
      local && local->port() != 0 ? "port " + std::to_string(local->port()) : std::string("the local port");
  switch (condition) {
    case Errc::local_port_busy:
      return port + " is in use, or held by a closed connection in TIME_WAIT (60 s on Linux, "
                    "120-240 s on Windows); bind port 0 (EphemeralBind), rotate over several ports "
                    "(FixedPortRotation), or set reuse_address on FixedPort";
    case Errc::local_ports_exhausted:
      return "every usable local port is in use or in TIME_WAIT; wait for TIME_WAIT to pass "
             "(a retry policy), widen the port range, or let ports be shared per destination "
             "(EphemeralBind uses IP_BIND_ADDRESS_NO_PORT)";
    case Errc::connection_refused:
      return "nothing listens on " + (remote ? remote->to_string() : std::string("the remote port")) +
             "; check that the server runs, or retry with a backoff (ExponentialRetry)";
    case Errc::timed_out:
      return "the peer did not answer in time; check reachability and firewalls, or allow a "
             "longer connect timeout";
    case Errc::network_unreachable: return "no route to that network; check the address and the routing table";
    case Errc::host_unreachable: return "the host does not answer; check that it is up and reachable";
    case Errc::address_not_available:
      return (local && !local->is_unspecified() ? "the source address " + local->address_string()
                                                : std::string("the source address")) +
             " is not an address of this host; bind an address the host has (ip -brief address), or none";
    case Errc::cancelled: return "the caller asked to stop (stop_token)";
    case Errc::invalid_argument: return {};  // the detail says what is wrong
    case Errc::permission_denied:
      return "ports below 1024 need privileges (CAP_NET_BIND_SERVICE), and a firewall may refuse; "
             "use a port of 1024 or above";
    case Errc::connection_reset:
    case Errc::connection_aborted: return "the peer or the network dropped the connection; retry later";
    case Errc::address_family_not_supported:
      return "this host lacks that address family; use an endpoint of the other family";
    case Errc::too_many_open_sockets:
      return "the process or system is out of descriptors; close unused sockets or raise "
             "RLIMIT_NOFILE (ulimit -n)";
    case Errc::network_down: return "the network interface is down";
    case Errc::out_of_resources: return "the kernel is short of memory or buffers; retry later";
    case Errc::host_not_found:
      return "the name does not exist, or has no address of the families asked for; check its spelling and "
             "the name server's records (getent ahosts NAME)";
    case Errc::try_again:
      return "the name server gave no answer for now (it timed out or said SERVFAIL); check the servers in "
             "/etc/resolv.conf and that they are reachable; a retry policy retries the lookup";
    case Errc::name_server_failed:
      return "the name server refused or failed for good; check the resolver configuration (/etc/resolv.conf)";
    case Errc::other: return {};
  }
  return {};
}

}  // namespace

Errc NetError::condition() const noexcept {
  const Errc c = condition_of(code_);
  const bool kernel_port = port_chosen_by_kernel(local_);
  if (step_ == Step::connect && kernel_port && (c == Errc::address_not_available || c == Errc::local_port_busy))
    return Errc::local_ports_exhausted;
  // Linux: a bound socket whose 4-tuple is taken fails connect() with EADDRNOTAVAIL: our port is
  // busy towards that destination.
  if (step_ == Step::connect && !kernel_port && c == Errc::address_not_available) return Errc::local_port_busy;
  if (step_ == Step::bind && c == Errc::local_port_busy && local_ && local_->port() == 0)
    return Errc::local_ports_exhausted;
  // A name server that did not answer in time failed for now, as one that said SERVFAIL did.
  if (step_ == Step::resolve && c == Errc::timed_out) return Errc::try_again;
  return c;
}

std::string NetError::summary() const {
  std::string m = remote_ ? remote_->to_string() + " " : std::string();
  m += std::string(to_string(step_)) + ": " + std::string(describe(condition())) + " (" + code_text(code_) + ")";
  if (!detail_.empty()) m += ": " + detail_;
  return m;
}

std::string NetError::message() const {
  std::string m(to_string(step_));
  if (local_) m += " " + local_->to_string();
  if (remote_) m += " -> " + remote_->to_string();
  const Errc c = condition();
  m += ": ";
  m += describe(c);
  m += " (" + code_text(code_) + ")";
  if (attempts_ > 0) m += ", after " + std::to_string(attempts_) + (attempts_ == 1 ? " attempt" : " attempts");
  if (!detail_.empty()) m += ": " + detail_;
  if (std::string h = hint(c, local_, remote_); !h.empty()) m += "; " + h;
  return m;
}

}  // namespace connpolicy
