#include "census_view.hpp"

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

std::string census_text(const Census& census, const std::optional<PortRange>& range, std::size_t asked) {
  std::ostringstream out;
  out << "connpolicy census: " << census.uses.size() << " socket(s) ";
  if (range)
    out << "on ports " << range->to_string();
  else
    out << "of the " << asked << " connection(s) asked about";
  out << " (from " << to_string(census.source) << ")\n";
  for (const PortUse& use : census.uses) out << "  " << use_line(use) << "\n";
  return out.str();
}

nlohmann::json census_json(const Census& census, const std::optional<PortRange>& range, std::size_t asked) {
  nlohmann::json sockets = nlohmann::json::array();
  for (const PortUse& use : census.uses) sockets.push_back(use_json(use));
  return {
      {"version", 1},
      {"census_source", source_id(census.source)},
      {"range", range ? nlohmann::json{{"first", range->first()}, {"last", range->last()}} : nlohmann::json(nullptr)},
      {"asked", asked},
      {"sockets", sockets}};
}

}  // namespace connpolicy::command
