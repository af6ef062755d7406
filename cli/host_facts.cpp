#include "host_facts.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace connpolicy::command {
namespace {
[[maybe_unused]] std::optional<std::string> read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}
}  // namespace

std::vector<std::string_view> split(std::string_view text, char by) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = text.find(by);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::vector<PortRange> parse_port_list(std::string_view text) {
  std::vector<PortRange> ranges;
  for (std::string_view part : split(text, ','))
    if (auto range = PortRange::parse(part)) ranges.push_back(*range);
  return ranges;
}

bool is_reserved(const HostFacts& facts, std::uint16_t port) {
  return std::ranges::any_of(facts.reserved, [port](const PortRange& r) { return r.contains(port); });
}

std::size_t ephemeral_ports_usable(const HostFacts& facts) {
  if (!facts.ephemeral) return 0;
  std::size_t usable = 0;
  for (long p = facts.ephemeral->first(); p <= facts.ephemeral->last(); ++p)
    if (!is_reserved(facts, static_cast<std::uint16_t>(p))) ++usable;
  return usable;
}

HostFacts read_host_facts() {
  HostFacts facts;
#ifdef _WIN32
  // Windows' dynamic port range is 49152-65535 unless `netsh int ipv4 set dynamicport` changed it;
  // there is no documented call that reads it, so the default is shown and labelled as such.
  facts.system = "windows";
  facts.ephemeral = PortRange::make(49152, 65535).value();
  facts.ephemeral_is_default = true;
#else
  facts.system = "linux";
  if (auto range = ephemeral_port_range()) facts.ephemeral = *range;
  if (auto text = read_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports")) {
    facts.reserved_text = *text;
    facts.reserved = parse_port_list(*text);
  }
  facts.tcp_timestamps = tcp_timestamps_enabled();
  if (auto text = read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse")) {
    std::istringstream in(*text);
    int value = 0;
    if (in >> value) facts.tcp_tw_reuse = value;
  }
#endif
  return facts;
}

}  // namespace connpolicy::command
