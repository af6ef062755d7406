// Port helpers for integration tests. Include after `import connpolicy;`.
// (The loopback server itself is connpolicy.testing's LoopbackServer.)
#pragma once
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace test_support {

// `n` consecutive ports that could be bound a moment ago (in [low, high]).
inline std::uint16_t free_port_block(int n, int low = 20000, int high = 29999) {
  auto range =
      connpolicy::find_free_port_range(static_cast<std::size_t>(n), connpolicy::PortRange::make(low, high).value());
  if (!range) throw std::runtime_error(range.error().message());
  return range->first();
}

// net.ipv4.ip_local_port_range: the kernel's ephemeral ports, {first, last}.
inline std::pair<int, int> ephemeral_range() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int first = 32768, last = 60999;
  f >> first >> last;
  return {first, last};
}

}  // namespace test_support
