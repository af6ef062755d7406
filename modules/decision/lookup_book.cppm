// What a name's two lookups, asked at once, have to remember: each family's answer as it comes,
// whether the connect began before both were in, and until when to wait for IPv6 when IPv4
// answered first (RFC 8305's resolution delay). ConnectCore makes the decisions.
module;
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
export module connpolicy.decision:lookup_book;
import connpolicy.core;
import :race_book;

export namespace connpolicy::detail {

class LookupBook {
 public:
  using Answer = expected<std::vector<Endpoint>, NetError>;

  // A new round: nothing asked yet.
  void reset() noexcept {
    answers_[0].reset();
    answers_[1].reset();
    asked_ = began_ = false;
    wake_ = Timer::time_point::max();
  }
  void put(Family family, Answer answer) {
    asked_ = true;
    answers_[slot(family)] = std::move(answer);
  }
  bool both_in() const noexcept { return answers_[0] && answers_[1]; }
  // A family's answer is still to come, after the other's.
  bool awaiting() const noexcept { return asked_ && !both_in(); }
  std::optional<Family> missing() const noexcept {
    if (!awaiting()) return std::nullopt;
    return answers_[0] ? Family::ipv4 : Family::ipv6;
  }
  bool has_addresses(Family family) const noexcept {
    const auto& a = answers_[slot(family)];
    return a && *a && !(*a)->empty();
  }
  std::span<const Endpoint> addresses(Family family) const noexcept {
    if (!has_addresses(family)) return {};
    return **answers_[slot(family)];
  }
  const Answer& answer(Family family) const { return *answers_[slot(family)]; }
  // `family`'s addresses, come late, go before the addresses not tried yet (those from `next`
  // on), alternating with them (RFC 8305, section 4: the last one tried was of the other family).
  void join(Family family, std::vector<Endpoint>& addresses, std::size_t next) const {
    std::vector<Endpoint> rest(addresses.begin() + static_cast<std::ptrdiff_t>(next), addresses.end());
    addresses.resize(next);
    for (Endpoint& e : interleave_families(this->addresses(family), rest)) addresses.push_back(std::move(e));
  }

  // The connect began with one family's addresses; the other's will join.
  void begin() noexcept { began_ = true; }
  bool began() const noexcept { return began_; }
  void wake_at(Timer::time_point at) noexcept { wake_ = at; }
  Timer::time_point wake_at() const noexcept { return wake_; }

 private:
  static int slot(Family family) noexcept { return family == Family::ipv6 ? 0 : 1; }
  std::optional<Answer> answers_[2];  // [0] IPv6, [1] IPv4
  Timer::time_point wake_ = Timer::time_point::max();
  bool asked_ = false, began_ = false;
};

// What one family's lookup came to, in a few words: "IPv6 (AAAA): no record", "IPv4 (A): no
// answer for now (ETIMEDOUT): no answer within 5000 ms" (the resolver's own detail, less the name
// and the family it repeats).
inline std::string lookup_outcome(const HostPort& name, Family family, const LookupBook::Answer& answer) {
  const std::string_view label = lookup_name(family);
  std::string said = std::string(label) + ": ";
  if (answer) return said + (answer->empty() ? "no record" : std::to_string(answer->size()) + " address(es)");
  const NetError& e = answer.error();
  std::string_view detail = e.detail();
  for (const std::string& repeated : {name.to_string(), std::string(label)}) {
    if (detail.starts_with(repeated)) detail.remove_prefix(repeated.size());
    if (detail.starts_with(": ")) detail.remove_prefix(2);
  }
  switch (e.condition()) {
    case Errc::try_again: said += "no answer for now"; break;
    case Errc::host_not_found: said += "no such name"; break;
    case Errc::name_server_failed: said += "the name server failed"; break;
    default: said += describe(e.condition());
  }
  if (const std::string_view code = code_name(e.code()); !code.empty()) said += " (" + std::string(code) + ")";
  if (!detail.empty()) said += ": " + std::string(detail);
  return said;
}

// The connect's error when neither family gave an address, naming what each got. A temporary
// failure of either (a timeout, SERVFAIL) is the error, whatever the other said, so the connect
// is retried (Errc::try_again): an IPv6-only name whose AAAA lookup failed for a moment is not
// "not found" because it has no A record. "No such name" only when a family says so and none
// failed for now; both empty: the name has no address.
inline NetError lookup_failure(const HostPort& name, const LookupBook::Answer& v6, const LookupBook::Answer& v4) {
  const auto failed_with = [](const LookupBook::Answer& a, Errc condition) {
    return !a && a.error().condition() == condition;
  };
  const LookupBook::Answer* decides = nullptr;
  for (Errc condition : {Errc::try_again, Errc::host_not_found})
    for (const LookupBook::Answer* a : {&v6, &v4})
      if (!decides && failed_with(*a, condition)) decides = a;
  if (!decides) decides = !v6 ? &v6 : !v4 ? &v4 : nullptr;
  const std::string outcomes = lookup_outcome(name, Family::ipv6, v6) + "; " + lookup_outcome(name, Family::ipv4, v4);
  if (!decides)
    return NetError(Step::resolve, LibraryError::no_address,
                    name.to_string() + " has no IPv6 or IPv4 address (" + outcomes + ")");
  return NetError(Step::resolve, decides->error().code()).with_detail(name.to_string() + ": " + outcomes);
}

}  // namespace connpolicy::detail
