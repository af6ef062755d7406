// What this host's kernel says about the ports a client connects from: the ephemeral range, the
// ports reserved out of it, and the two sysctls that decide whether TIME_WAIT can be reused.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
import connpolicy;

namespace connpolicy::command {

struct HostFacts {
  std::string system;                  // "linux" or "windows"
  std::optional<PortRange> ephemeral;  // where connect() and bind(:0) take their ports
  bool ephemeral_is_default = false;   // Windows: the default dynamic range; the configured one is not read
  std::vector<PortRange> reserved;     // net.ipv4.ip_local_reserved_ports (never handed out by the kernel)
  std::string reserved_text;           // the sysctl's own text, "" when none are reserved
  std::optional<bool> tcp_timestamps;  // net.ipv4.tcp_timestamps on (1 or 2); empty: unknown
  std::optional<int> tcp_tw_reuse;     // net.ipv4.tcp_tw_reuse: 0, 1 (all), 2 (loopback only)
};

// Reads them from this host (/proc/sys on Linux; fixed facts on Windows).
HostFacts read_host_facts();

// "1000-1010,2000" (the sysctl's form) to ranges; parts that do not parse are left out.
std::vector<PortRange> parse_port_list(std::string_view text);

// The parts of `text` between each `by` ("a,b," gives "a", "b", ""): for the comma lists of the
// sysctls and of --bind pool: and --retry.
std::vector<std::string_view> split(std::string_view text, char by);

// Ports of the ephemeral range that the kernel may hand out (not reserved).
std::size_t ephemeral_ports_usable(const HostFacts& facts);
bool is_reserved(const HostFacts& facts, std::uint16_t port);

}  // namespace connpolicy::command
