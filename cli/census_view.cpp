#include "census_view.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "doctor.hpp"

namespace connpolicy::command {

std::expected<SocketPair, std::string> parse_pair(std::string_view text) {
  const std::size_t comma = text.find(',');
  if (comma == std::string_view::npos)
    return std::unexpected("--look-up '" + std::string(text) +
                           "' is not LOCAL,REMOTE (two ADDR:PORT, a comma between)");
  auto local = Endpoint::parse(text.substr(0, comma));
  auto remote = Endpoint::parse(text.substr(comma + 1));
  if (!local) return std::unexpected("--look-up: " + local.error().message());
  if (!remote) return std::unexpected("--look-up: " + remote.error().message());
  return SocketPair{*local, *remote};
}

std::expected<TcpState, std::string> parse_state(std::string_view text) {
  std::string wanted;  // "time-wait" and "TIME_WAIT" alike
  for (char c : text) wanted += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string known;
  for (int s = static_cast<int>(TcpState::established); s <= static_cast<int>(TcpState::new_syn_recv); ++s) {
    const std::string_view name = to_string(static_cast<TcpState>(s));
    if (name == wanted) return static_cast<TcpState>(s);
    std::string lower;
    for (char c : name) lower += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    known += (known.empty() ? "" : ", ") + lower;
  }
  return std::unexpected("--state '" + std::string(text) + "' is not a TCP state: give one of " + known);
}

bool CensusFilter::keeps(const PortUse& use, const SocketOwners& owners) const {
  if (ports && !ports->contains(use.local.port())) return false;
  if (!states.empty() && std::ranges::find(states, use.state) == states.end()) return false;
  if (to && !same_end(use.remote, *to)) return false;
  if (pid && owners.of(use).pid != pid) return false;
  return true;
}

std::string CensusFilter::text() const {
  std::string out;
  const auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (ports) add("on ports " + ports->to_string());
  if (!states.empty()) {
    std::string list;
    for (TcpState s : states) list += (list.empty() ? "" : " or ") + std::string(to_string(s));
    add("state " + list);
  }
  if (to) add("to " + to->to_string());
  if (pid) add("held by pid " + std::to_string(*pid));
  return out;
}

Census filtered(const Census& census, const CensusFilter& filter, const SocketOwners& owners) {
  Census kept = census;
  std::erase_if(kept.uses, [&](const PortUse& use) { return !filter.keeps(use, owners); });
  return kept;
}

std::string census_text(const Census& census, const CensusFilter& filter, std::size_t asked,
                        const SocketOwners& owners) {
  std::ostringstream out;
  out << "connpolicy census: " << census.uses.size() << " socket(s)";
  if (asked > 0) out << " of the " << asked << " connection(s) asked about";
  if (const std::string f = filter.text(); !f.empty()) out << " " << f;
  out << " (from " << to_string(census.source) << ")\n";
  for (const PortUse& use : census.uses) out << "  " << use_line(use, owners) << "\n";
  if (owners.looked && owners.unreadable > 0 && std::ranges::any_of(census.uses, [&](const PortUse& use) {
        return owners.of(use).unknown == SocketOwner::Unknown::needs_root;
      }))
    out << "  (" << owners.unreadable << " of " << owners.processes
        << " processes are another user's: run as root to name their sockets' owners)\n";
  return out.str();
}

nlohmann::json census_json(const Census& census, const CensusFilter& filter, std::size_t asked,
                           const SocketOwners& owners) {
  nlohmann::json sockets = nlohmann::json::array();
  for (const PortUse& use : census.uses) sockets.push_back(use_json(use, owners));
  nlohmann::json states = nlohmann::json::array();
  for (TcpState s : filter.states) states.push_back(std::string(to_string(s)));
  const auto& range = filter.ports;
  return {
      {"version", 2},
      {"census_source", source_id(census.source)},
      {"range", range ? nlohmann::json{{"first", range->first()}, {"last", range->last()}} : nlohmann::json(nullptr)},
      {"asked", asked},
      {"filters",
       {{"states", states},
        {"to", filter.to ? nlohmann::json(filter.to->to_string()) : nlohmann::json(nullptr)},
        {"pid", filter.pid ? nlohmann::json(*filter.pid) : nlohmann::json(nullptr)}}},
      {"sockets", sockets}};
}

}  // namespace connpolicy::command
