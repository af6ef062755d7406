// FailFast: never wait. Moves to another port, another source address or the next endpoint when
// that can help at once,
// otherwise gives up with the error as it is.
//
// Use when: a caller must answer within its own budget (an RPC with a tight deadline, a health
// check), or has a retry loop of its own above this one.
module;
export module connpolicy.errors:fail_fast;
import connpolicy.core;
import :action;

export namespace connpolicy {

struct FailFast {
  Action classify(const Failure& f) const noexcept {
    const Errc condition = f.error.condition();
    if (condition == Errc::local_port_busy && f.can_rebind) return Action::rebind;
    if (condition == Errc::address_not_available && f.can_change_address) return Action::rebind;
    if (f.has_next_endpoint && condition != Errc::invalid_argument && condition != Errc::cancelled)
      return Action::next_endpoint;
    return Action::give_up;
  }
};

}  // namespace connpolicy
