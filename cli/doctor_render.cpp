// The doctor's two faces: text for the person on call, JSON (docs/command.md, version 2) for scripts.
#include <algorithm>
#include <sstream>

#include "doctor.hpp"

namespace connpolicy::command {
namespace {

std::string on_off(const std::optional<bool>& value) { return !value ? "unknown" : *value ? "on" : "off"; }

std::string tw_reuse_text(const std::optional<int>& value) {
  if (!value) return "unknown";
  if (*value == 0) return "0 (off)";
  if (*value == 1) return "1 (on)";
  return std::to_string(*value) + " (loopback only)";
}

std::string destination_line(const Destination& d) {
  std::string line = std::to_string(d.time_wait) + " TIME_WAIT, " + std::to_string(d.ephemeral_held) +
                     " ephemeral ports held, " + std::to_string(d.ephemeral_left) + " left";
  if (d.ephemeral_left_at_least < d.ephemeral_left)
    line += " (as few as " + std::to_string(d.ephemeral_left_at_least) + ")";
  if (d.held_most_by)
    line += "; most held by " + to_string(*d.held_most_by) + " (" + std::to_string(d.held_most) + " socket(s))";
  return line;
}

nlohmann::json destination_json(const Destination& d) {
  return {{"remote", d.remote.to_string()},
          {"time_wait", d.time_wait},
          {"ephemeral_ports_held", d.ephemeral_held},
          {"ephemeral_ports_left", d.ephemeral_left},
          {"ephemeral_ports_left_at_least", d.ephemeral_left_at_least},
          {"held_most_by", d.held_most_by
                               ? nlohmann::json{{"owner", owner_json(*d.held_most_by)}, {"sockets", d.held_most}}
                               : nlohmann::json(nullptr)}};
}

nlohmann::json optional_json(const auto& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); }

}  // namespace

std::string source_id(CensusSource source) {
  switch (source) {
    case CensusSource::netlink: return "netlink";
    case CensusSource::proc_net_tcp: return "proc_net_tcp";
    case CensusSource::tcp_table: return "tcp_table";
  }
  return "unknown";
}

nlohmann::json owner_json(const SocketOwner& owner) {
  static constexpr const char* unknown[] = {nullptr, "time_wait", "needs_root", "not_found", "not_asked"};
  const char* why = unknown[static_cast<int>(owner.unknown)];
  return {{"pid", optional_json(owner.pid)},
          {"command", owner.pid && !owner.command.empty() ? nlohmann::json(owner.command) : nlohmann::json(nullptr)},
          {"uid", optional_json(owner.uid)},
          {"other_holders", owner.other_holders},
          {"unknown", why ? nlohmann::json(why) : nlohmann::json(nullptr)}};
}

nlohmann::json use_json(const PortUse& use, const SocketOwners& owners) {
  return {
      {"local", use.local.to_string()},
      {"remote", use.remote.is_unspecified() ? nlohmann::json(nullptr) : nlohmann::json(use.remote.to_string())},
      {"state", std::string(to_string(use.state))},
      {"time_wait_left_ms", use.time_wait_left ? nlohmann::json(use.time_wait_left->count()) : nlohmann::json(nullptr)},
      {"owner", owners.looked ? owner_json(owners.of(use)) : nlohmann::json(nullptr)}};
}

std::string use_line(const PortUse& use, const SocketOwners& owners) {
  std::string line = std::string(to_string(use.state)) + "  " + use.local.to_string();
  if (!use.remote.is_unspecified()) line += " -> " + use.remote.to_string();
  if (use.state == TcpState::time_wait) line += "  " + time_left_text(use) + " left";
  if (owners.looked) {
    const SocketOwner owner = owners.of(use);
    line += std::string(owner.unknown == SocketOwner::Unknown::none ? "  held by " : "  ") + to_string(owner);
  }
  return line;
}

std::string held_by(const PortUse& use, const SocketOwners& owners) {
  if (!owners.looked) return {};
  const SocketOwner owner = owners.of(use);
  if (owner.unknown == SocketOwner::Unknown::none) return ", held by " + to_string(owner);
  if (owner.unknown == SocketOwner::Unknown::needs_root) return ", held by a process unknown to this user (needs root)";
  return {};
}

std::string render_text(const Diagnosis& d) {
  std::ostringstream out;
  const HostFacts& f = d.facts;
  out << "connpolicy doctor: " << f.system << ", " << d.sockets << " TCP sockets (from " << to_string(d.source)
      << ")\n";
  out << "  ephemeral ports  ";
  if (f.ephemeral)
    out << f.ephemeral->to_string() << (f.ephemeral_is_default ? " (the default; not read)" : "") << ", "
        << d.ephemeral_usable << " usable, reserved: " << (f.reserved_text.empty() ? "none" : f.reserved_text) << "\n";
  else
    out << "unknown\n";
  out << "  tcp_timestamps   " << on_off(f.tcp_timestamps) << "\n  tcp_tw_reuse     " << tw_reuse_text(f.tcp_tw_reuse)
      << "\n  TIME_WAIT        " << d.time_wait << " in all\n";
  if (!d.destinations.empty()) out << "destinations (client side, most ports held first):\n";
  for (std::size_t i = 0; i < d.destinations.size() && i < 10; ++i)
    out << "  " << d.destinations[i].remote.to_string() << "  " << destination_line(d.destinations[i]) << "\n";
  if (d.destinations.size() > 10) out << "  ... " << d.destinations.size() - 10 << " more (--json lists them all)\n";
  if (d.to) out << "to " << d.to->remote.to_string() << ": " << destination_line(*d.to) << "\n";
  const auto uncertain = [](const Destination& x) { return x.ephemeral_left_at_least < x.ephemeral_left; };
  if (std::ranges::any_of(d.destinations, uncertain) || (d.to && uncertain(*d.to)))
    out << "  (as few as: if every port held towards other destinations was claimed with bind(), which connect() "
           "never reuses towards anyone; --range names the ports you bind)\n";
  if (d.range) {
    out << "range " << d.range->to_string() << ": " << d.held.size() << " held, " << d.range->size() - d.held.size()
        << " free\n";
    for (const RangePort& p : d.held)
      for (const PortUse& use : p.uses) out << "  " << p.port << "  " << use_line(use, d.owners) << "\n";
  }
  if (d.findings.empty())
    out << "no findings\n";
  else
    out << "findings (" << d.findings.size() << "):\n";
  for (const Finding& finding : d.findings) out << "  [" << finding.id << "] " << finding.text << "\n";
  return out.str();
}

nlohmann::json to_json(const Diagnosis& d) {
  const HostFacts& f = d.facts;
  nlohmann::json j = {{"version", 2},
                      {"system", f.system},
                      {"census_source", source_id(d.source)},
                      {"sockets", d.sockets},
                      {"time_wait", d.time_wait},
                      {"tcp_timestamps", optional_json(f.tcp_timestamps)},
                      {"tcp_tw_reuse", optional_json(f.tcp_tw_reuse)},
                      {"reserved_ports", f.reserved_text},
                      {"ephemeral_ports_usable", d.ephemeral_usable}};
  j["ephemeral_range"] = f.ephemeral ? nlohmann::json{{"first", f.ephemeral->first()},
                                                      {"last", f.ephemeral->last()},
                                                      {"default", f.ephemeral_is_default}}
                                     : nlohmann::json(nullptr);
  j["destinations"] = nlohmann::json::array();
  for (const Destination& dest : d.destinations) j["destinations"].push_back(destination_json(dest));
  j["to"] = d.to ? destination_json(*d.to) : nlohmann::json(nullptr);
  j["range"] = nullptr;
  if (d.range) {
    nlohmann::json ports = nlohmann::json::array();
    for (const RangePort& p : d.held) {
      nlohmann::json uses = nlohmann::json::array();
      for (const PortUse& use : p.uses) uses.push_back(use_json(use, d.owners));
      ports.push_back({{"port", p.port}, {"sockets", uses}});
    }
    j["range"] = {{"first", d.range->first()},
                  {"last", d.range->last()},
                  {"free", d.range->size() - d.held.size()},
                  {"held", ports}};
  }
  j["findings"] = nlohmann::json::array();
  for (const Finding& finding : d.findings)
    j["findings"].push_back({{"id", finding.id}, {"ports", finding.ports}, {"text", finding.text}});
  return j;
}

}  // namespace connpolicy::command
