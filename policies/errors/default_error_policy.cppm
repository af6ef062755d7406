// DefaultErrorPolicy: what a careful person would do with each failure.
//
//   local port busy (bind EADDRINUSE, connect EADDRNOTAVAIL/10048 from our port)
//                                                           -> rebind when the bind policy can
//                                                              rotate, else retry
//   permission denied at bind (a privileged or excluded port) -> rebind when the bind policy can
//                                                              rotate, else give up
//   address not available (bind: the source address is not on this host; no other port can
//   fix that)                                               -> rebind when the bind policy has
//                                                              another address (a pool), else
//                                                              give up at once
//   local ports exhausted (ephemeral range, all cooling)    -> retry (waiting frees ports)
//   refused, timed out, unreachable, reset, network down    -> next endpoint, then retry
//   too many open sockets, out of resources                 -> retry
//   unsupported address family                              -> next endpoint, else give up
//   a name's lookup: no answer for now, name server failed  -> retry (both pass)
//   host not found (the name does not exist)               -> give up at once
//   invalid argument, permission denied, cancelled, other   -> give up at once
//
// Use when: always, unless you know better for your protocol (then write your own: see
// examples/custom_policy.cpp).
module;
export module connpolicy.errors:default_error_policy;
import connpolicy.core;
import :action;

export namespace connpolicy {

struct DefaultErrorPolicy {
  Action classify(const Failure& f) const noexcept {
    const Errc condition = f.error.condition();
    const bool at_bind = f.error.step() == Step::bind;
    switch (condition) {
      case Errc::local_port_busy: return f.can_rebind ? Action::rebind : Action::retry;
      case Errc::permission_denied: return at_bind && f.can_rebind ? Action::rebind : Action::give_up;
      case Errc::address_not_available: return at_bind && f.can_change_address ? Action::rebind : Action::give_up;
      case Errc::local_ports_exhausted:
      case Errc::too_many_open_sockets:
      case Errc::out_of_resources:
      case Errc::try_again:
      case Errc::name_server_failed: return Action::retry;
      case Errc::connection_refused:
      case Errc::timed_out:
      case Errc::network_unreachable:
      case Errc::host_unreachable:
      case Errc::connection_reset:
      case Errc::connection_aborted:
      case Errc::network_down: return f.has_next_endpoint ? Action::next_endpoint : Action::retry;
      case Errc::address_family_not_supported: return f.has_next_endpoint ? Action::next_endpoint : Action::give_up;
      case Errc::host_not_found:
      case Errc::invalid_argument:
      case Errc::cancelled:
      case Errc::other: return Action::give_up;
    }
    return Action::give_up;
  }
};

}  // namespace connpolicy
