// `connpolicy census`: the sockets on a range of local ports, or the connections asked about,
// filtered as `ss` filters (state, remote end, owning process), each with who holds it.
#pragma once
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <nlohmann/json.hpp>
import connpolicy;

namespace connpolicy::command {

// "LOCAL,REMOTE", e.g. "127.0.0.1:40000,127.0.0.1:7000" (IPv6 in brackets).
std::expected<SocketPair, std::string> parse_pair(std::string_view text);

// "time-wait", "TIME_WAIT", "established", "syn-sent", ... (ss's names and the kernel's, any case).
std::expected<TcpState, std::string> parse_state(std::string_view text);

// Which sockets to show; every part given must hold (they combine with "and"; several states
// with "or").
struct CensusFilter {
  std::optional<PortRange> ports;  // local ports (--range)
  std::vector<TcpState> states;    // --state, repeatable
  std::optional<Endpoint> to;      // the remote end (--to)
  std::optional<std::uint32_t> pid;
  bool keeps(const PortUse& use, const SocketOwners& owners) const;
  std::string text() const;  // "on ports 40000-40009, state TIME_WAIT, to 127.0.0.1:7000"
};

// The census's sockets that `filter` keeps.
Census filtered(const Census& census, const CensusFilter& filter, const SocketOwners& owners);

std::string census_text(const Census& census, const CensusFilter& filter, std::size_t asked,
                        const SocketOwners& owners);
nlohmann::json census_json(const Census& census, const CensusFilter& filter, std::size_t asked,
                           const SocketOwners& owners);

}  // namespace connpolicy::command
