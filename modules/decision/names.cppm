// ConnectCore's decisions about a name's addresses: the lookup's answers, and the race that may
// begin before the second family has answered (RFC 8305). Defined apart from the class to keep
// each file readable; declared, with what each does, in connect_core.cppm.
module;
#include <chrono>
#include <optional>
#include <span>
#include <utility>
#include <vector>
export module connpolicy.decision:names;
import connpolicy.core;
import connpolicy.bind;
import connpolicy.retry;
import connpolicy.errors;
import :race;
import :lookup;
import :next;
import :connect_core;

export namespace connpolicy {

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::resolved(std::span<const Endpoint> v6, std::span<const Endpoint> v4) {
  resolved_ = interleave_families(v6, v4);
  remotes_ = resolved_;
  current_ = 0;
  racing_ = can_race() && (resolved_.size() > 1 || lookup_.awaiting());
  race_.new_round();
  if (racing_) current_ = race_.take_next();
  if (resolved_.empty())
    return decide(
        NetError(Step::resolve, LibraryError::no_address, name_->to_string() + " has no IPv6 or IPv4 address"), false);
  return check_destinations();
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::resolved(const expected<std::vector<Endpoint>, NetError>& v6,
                                                         const expected<std::vector<Endpoint>, NetError>& v4) {
  const auto has_addresses = [](const expected<std::vector<Endpoint>, NetError>& a) { return a && !a->empty(); };
  if (!has_addresses(v6) && !has_addresses(v4)) return resolve_failed(detail::lookup_failure(*name_, v6, v4));
  using list = std::span<const Endpoint>;
  return resolved(v6 ? list(*v6) : list{}, v4 ? list(*v4) : list{});
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::lookup_answered(Family family,
                                                                expected<std::vector<Endpoint>, NetError> answer,
                                                                Timer::time_point now) {
  lookup_.put(family, std::move(answer));
  if (lookup_.began()) return join(family);
  if (lookup_.both_in()) return resolved(lookup_.answer(Family::ipv6), lookup_.answer(Family::ipv4));
  if (can_race() && lookup_.has_addresses(family)) {
    if (family == Family::ipv6) return begin(family);
    lookup_.wake_at(saturating_add(now, options_->resolution_delay));
  }
  return Next::lookup_wait;
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::lookup_woke(Timer::time_point now) {
  if (const auto wake = lookup_.wake_at(); wake != Timer::time_point::max()) {
    if (now < wake) return Next::lookup_wait;
    if (!lookup_.began() && lookup_.has_addresses(Family::ipv4)) return begin(Family::ipv4);
  }
  // Nothing came with no time set to wait for: the lookups broke their word (each family is
  // answered once, a silent one with a timeout). Never wait forever: the missing family failed.
  return lookup_answered(
      lookup_.missing().value_or(Family::ipv6),
      unexpected(NetError(Step::resolve, LibraryError::no_address, name_->to_string() + ": the lookup gave no answer")),
      now);
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::begin(Family family) {
  lookup_.begin();  // from now on, the other answer is awaited without a wake time
  lookup_.wake_at(Timer::time_point::max());
  const std::span<const Endpoint> none;
  return family == Family::ipv6 ? resolved(lookup_.addresses(family), none) : resolved(none, lookup_.addresses(family));
}

template <BindPolicy Bind, RetryPolicy Retry, ErrorPolicy Error, ConnectObserver Observer>
Next ConnectCore<Bind, Retry, Error, Observer>::join(Family family) {
  if (lookup_.has_addresses(family)) {
    lookup_.join(family, resolved_, race_.next_index());
    remotes_ = resolved_;
  }
  if (race_.in_flight()) return Next::race;
  if (race_.has_next(remotes_.size())) {
    current_ = race_.take_next();
    return Next::attempt;
  }
  race_.forget_last_failure();       // decide() records it again
  return decide(std::move(*last_));  // the race ran dry: its last failure decides
}

// Both families' answers, come in together and in either order: to the core as resolved() takes
// them, IPv6's first. What each driver does when its lookups hand over two answers at once.
template <class Core>
Next resolved_together(Core& core, const FamilyAnswer& one, const FamilyAnswer& other) {
  const bool v6_first = one.family == Family::ipv6;
  return core.resolved(v6_first ? one.result : other.result, v6_first ? other.result : one.result);
}
}  // namespace connpolicy
