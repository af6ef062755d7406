// What a name's two lookups, asked at once, have to remember: each family's answer as it comes,
// whether the connect began before both were in, and until when to wait for IPv6 when IPv4
// answered first (RFC 8305's resolution delay). ConnectCore makes the decisions.
module;
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>
export module connpolicy.decision:lookup;
import connpolicy.core;
import :race;

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

}  // namespace connpolicy::detail
