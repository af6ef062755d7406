// `connpolicy census`: every socket on a range of local ports, or the connections asked about.
#pragma once
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <nlohmann/json.hpp>
import connpolicy;

namespace connpolicy::command {

// "LOCAL,REMOTE", e.g. "127.0.0.1:40000,127.0.0.1:7000" (IPv6 in brackets).
std::expected<SocketPair, std::string> parse_pair(std::string_view text);

std::string census_text(const Census& census, const std::optional<PortRange>& range, std::size_t asked);
nlohmann::json census_json(const Census& census, const std::optional<PortRange>& range, std::size_t asked);

}  // namespace connpolicy::command
