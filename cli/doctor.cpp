#include "doctor.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace connpolicy::command {
namespace {

std::set<std::uint16_t> listening_ports(const Census& census) {
  std::set<std::uint16_t> ports;
  for (const PortUse& use : census.uses)
    if (use.state == TcpState::listen) ports.insert(use.local.port());
  return ports;
}

bool in_ephemeral(const HostFacts& facts, std::uint16_t port) {
  return facts.ephemeral && facts.ephemeral->contains(port) && !is_reserved(facts, port);
}

// Ports of the ephemeral range a listener holds: connect() cannot pick them towards anyone.
std::size_t held_by_listeners(const HostFacts& facts, const Census& census) {
  return static_cast<std::size_t>(
      std::ranges::count_if(listening_ports(census), [&](std::uint16_t port) { return in_ephemeral(facts, port); }));
}

// The ephemeral ports client-side sockets hold, towards anywhere; those of them inside --range
// (bound with bind(), by the user's word).
struct HeldPorts {
  std::set<std::uint16_t> all, bound;
};

// Client-side sockets per remote end, with the span of ports left towards each.
// Each destination's process with the most live sockets towards it is named when owners were
// looked up (ties: the lowest pid).
std::vector<Destination> destinations(const HostFacts& facts, const Census& census, std::size_t usable,
                                      const std::optional<PortRange>& range, const SocketOwners& owners,
                                      HeldPorts& held) {
  const auto listening = listening_ports(census);
  const std::size_t blocked = held_by_listeners(facts, census);
  std::map<Endpoint, Destination> by_remote;
  std::map<Endpoint, std::set<std::uint16_t>> ports_of;
  std::map<Endpoint, std::map<std::uint32_t, std::pair<std::size_t, SocketOwner>>> holders_of;  // by pid
  for (const PortUse& use : census.uses) {
    if (use.state == TcpState::listen || use.remote.is_unspecified() || listening.contains(use.local.port())) continue;
    Destination& d = by_remote[use.remote.unmapped()];
    d.remote = use.remote.unmapped();
    if (use.state == TcpState::time_wait) ++d.time_wait;
    if (owners.looked)
      if (SocketOwner owner = owners.of(use); owner.pid) {
        auto& [sockets, who] = holders_of[d.remote][*owner.pid];
        if (sockets++ == 0) who = std::move(owner);
      }
    if (!in_ephemeral(facts, use.local.port())) continue;
    ++d.ephemeral_held;
    ports_of[d.remote].insert(use.local.port());
    held.all.insert(use.local.port());
    if (range && range->contains(use.local.port())) held.bound.insert(use.local.port());
  }
  const std::size_t at_least = usable - std::min(usable, blocked + held.all.size());
  std::vector<Destination> all;
  for (auto& [remote, d] : by_remote) {
    const auto& mine = ports_of[remote];
    const auto bound_elsewhere = static_cast<std::size_t>(
        std::ranges::count_if(held.bound, [&](std::uint16_t port) { return !mine.contains(port); }));
    d.ephemeral_left = usable - std::min(usable, mine.size() + blocked + bound_elsewhere);
    d.ephemeral_left_at_least = std::min(at_least, d.ephemeral_left);
    for (const auto& [pid, holder] : holders_of[remote])
      if (holder.first > d.held_most) {
        d.held_most = holder.first;
        d.held_most_by = holder.second;
      }
    all.push_back(d);
  }
  std::ranges::sort(all, [](const Destination& a, const Destination& b) {  // ties: by address, as the map had them
    if (a.ephemeral_held != b.ephemeral_held) return a.ephemeral_held > b.ephemeral_held;
    return a.time_wait != b.time_wait ? a.time_wait > b.time_wait : a.remote < b.remote;
  });
  return all;
}

void range_findings(Diagnosis& d) {
  std::vector<std::uint16_t> waiting, busy;
  std::string waiting_text, busy_text;
  for (const RangePort& p : d.held) {
    const PortUse& use = p.uses.front();
    const bool tw = std::ranges::all_of(p.uses, [](const PortUse& u) { return u.state == TcpState::time_wait; });
    if (tw && waiting.size() < 3)
      waiting_text += (waiting.empty() ? "" : ", ") + std::to_string(p.port) + " for " + time_left_text(use);
    if (!tw && busy.size() < 3)
      busy_text += (busy.empty() ? "" : ", ") + std::to_string(p.port) + " (" + std::string(to_string(use.state)) +
                   (use.remote.is_unspecified() ? "" : " to " + use.remote.to_string()) + held_by(use, d.owners) + ")";
    (tw ? waiting : busy).push_back(p.port);
  }
  const std::string r = d.range->to_string();
  if (!waiting.empty())
    d.findings.push_back({"time_wait_in_range", waiting,
                          std::to_string(waiting.size()) + " port(s) of " + r + " held by TIME_WAIT (" + waiting_text +
                              (waiting.size() > 3 ? ", ..." : "") +
                              " more): a client that binds one gets EADDRINUSE (10048 on Windows) until then; use "
                              "FixedPortRotation (it skips them and says when the first frees), EphemeralBind, or "
                              "reuse_address (needs TCP timestamps)"});
  if (!busy.empty())
    d.findings.push_back({"port_in_use_in_range", busy,
                          std::to_string(busy.size()) + " port(s) of " + r + " in use by a live socket (" + busy_text +
                              (busy.size() > 3 ? ", ..." : "") +
                              "): binding them fails while it lives (reuse_address helps only when that socket set it "
                              "too and does not listen); a FixedPortRotation skips them, a FixedPort cannot"});
  if (!d.held.empty() && d.held.size() == d.range->size())
    d.findings.push_back({"range_exhausted",
                          {},
                          "every port of " + r +
                              " is held: a FixedPortRotation over it fails with local_ports_exhausted until one "
                              "frees; widen the range, close with close_reset() (no TIME_WAIT), or use EphemeralBind"});
}

std::string reserve_advice(const HostFacts& facts, const PortRange& overlap) {
  if (facts.system == "windows")
    return "move the range below " + std::to_string(facts.ephemeral->first()) +
           ", or shrink the dynamic range (netsh int ipv4 set dynamicport tcp start=... num=...)";
  const std::string list =
      facts.reserved_text.empty() ? overlap.to_string() : facts.reserved_text + "," + overlap.to_string();
  return "add them to the reserved ports, keeping those reserved now: sysctl -w net.ipv4.ip_local_reserved_ports=" +
         list;
}

void host_findings(Diagnosis& d, const std::optional<PortRange>& range) {
  const HostFacts& facts = d.facts;
  if (range && facts.ephemeral) {
    const long first = std::max(range->first(), facts.ephemeral->first());
    const long last = std::min(range->last(), facts.ephemeral->last());
    std::vector<std::uint16_t> exposed;
    for (long p = first; p <= last; ++p)
      if (!is_reserved(facts, static_cast<std::uint16_t>(p))) exposed.push_back(static_cast<std::uint16_t>(p));
    if (!exposed.empty())
      d.findings.push_back({"range_in_ephemeral_range", exposed,
                            std::to_string(exposed.size()) + " port(s) of " + range->to_string() +
                                " lie in the ephemeral range " + facts.ephemeral->to_string() +
                                ": any program's connect() may take them; " +
                                reserve_advice(facts, PortRange::make(first, last).value())});
  }
  if (facts.tcp_timestamps == false)
    d.findings.push_back({"timestamps_off",
                          {},
                          "net.ipv4.tcp_timestamps is 0: reuse_address cannot reconnect to the same destination "
                          "through a TIME_WAIT (connect fails EADDRNOTAVAIL); use FixedPortRotation, or set it to 1"});
  for (const Destination& dest : d.destinations) {  // fewer than 10 % of the ephemeral ports left
    if (d.ephemeral_usable > 0 && dest.ephemeral_left * 10 < d.ephemeral_usable)
      d.findings.push_back({"destination_ports_low",
                            {},
                            dest.remote.to_string() + ": " + std::to_string(dest.ephemeral_left) + " of " +
                                std::to_string(d.ephemeral_usable) + " ephemeral ports left (" +
                                std::to_string(dest.time_wait) +
                                " TIME_WAITs towards it): connects will fail EADDRNOTAVAIL soon; reuse connections, "
                                "close with close_reset(), or spread over a SourceAddressPool"});
  }
  // The ports left towards a new destination are few if the ports held elsewhere were bound.
  const std::size_t unknown = d.ephemeral_held_anywhere - d.ephemeral_bound_in_range;
  const std::size_t at_least =
      d.destinations.empty() ? d.ephemeral_usable : d.destinations.front().ephemeral_left_at_least;
  if (!d.range && unknown > 0 && d.ephemeral_usable > 0 && at_least * 10 < d.ephemeral_usable)  // --range: named
    d.findings.push_back(
        {"ephemeral_ports_maybe_bound",
         {},
         std::to_string(d.ephemeral_held_anywhere) +
             " ports of the ephemeral range are held by client sockets; connect() "
             "never picks a port that was claimed with bind() (a fixed port, FixedPortRotation, bind() without "
             "IP_BIND_ADDRESS_NO_PORT), towards any destination, and the kernel does not say which were, so as few "
             "as " +
             std::to_string(at_least) + " of " + std::to_string(d.ephemeral_usable) +
             " may be left towards a new destination; name the ports you bind with --range to count them exactly, and "
             "bind outside the ephemeral range"});
}

}  // namespace

std::string time_left_text(const PortUse& use) {
  if (!use.time_wait_left) return "an unknown time (Windows does not say; TcpTimedWaitDelay, 30-240 s)";
  return std::to_string((use.time_wait_left->count() + 999) / 1000) + " s";
}

Diagnosis diagnose(const HostFacts& facts, const Census& census, std::optional<PortRange> range,
                   std::optional<Endpoint> to, SocketOwners owners) {
  Diagnosis d;
  d.owners = std::move(owners);
  d.facts = facts;
  d.source = census.source;
  d.sockets = census.uses.size();
  d.time_wait = static_cast<int>(std::ranges::count(census.uses, TcpState::time_wait, &PortUse::state));
  d.ephemeral_usable = ephemeral_ports_usable(facts);
  HeldPorts held_ports;
  d.destinations = destinations(facts, census, d.ephemeral_usable, range, d.owners, held_ports);
  if (to) {
    const auto same =
        std::ranges::find_if(d.destinations, [&](const Destination& x) { return same_end(x.remote, *to); });
    const std::size_t usable = d.ephemeral_usable, blocked = held_by_listeners(facts, census);
    if (same != d.destinations.end()) {
      d.to = *same;
    } else {  // nothing goes there yet
      d.to = Destination{.remote = to->unmapped()};
      d.to->ephemeral_left = usable - std::min(usable, blocked + held_ports.bound.size());
      d.to->ephemeral_left_at_least = usable - std::min(usable, blocked + held_ports.all.size());
    }
  }
  d.ephemeral_held_anywhere = held_ports.all.size();
  d.ephemeral_bound_in_range = held_ports.bound.size();
  d.range = range;
  if (range) {
    std::map<std::uint16_t, RangePort> ports;
    for (const PortUse& use : census.uses)
      if (range->contains(use.local.port())) {
        ports[use.local.port()].port = use.local.port();
        ports[use.local.port()].uses.push_back(use);
      }
    for (auto& [port, held] : ports) d.held.push_back(std::move(held));
    range_findings(d);
  }
  host_findings(d, range);
  return d;
}

}  // namespace connpolicy::command
