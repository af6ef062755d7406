// libFuzzer target: Windows' TCP table walker on any bytes (it reads the table's layout by hand,
// so it runs on Linux too). Invariants: a refused table appends nothing; rows read never exceed
// what the bytes hold; every socket is in the range asked and in a state that holds a port.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>
import connpolicy;

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const unsigned char> bytes(data, size);
  const auto range = cp::PortRange::make(1024, 49151).value();
  for (const bool v6 : {false, true}) {
    std::vector<cp::PortUse> uses;
    const bool read = cp::detail::walk_tcp_table(bytes, v6, range, uses);
    if (!read && !uses.empty()) __builtin_trap();
    if (size >= 4 && uses.size() > (size - 4) / (v6 ? 56 : 24)) __builtin_trap();
    for (const cp::PortUse& use : uses) {
      if (!range.contains(use.local.port()) || use.local.is_v6() != v6 || use.time_wait_left) __builtin_trap();
      if (use.state == cp::TcpState::close || static_cast<int>(use.state) < 1 || static_cast<int>(use.state) > 11)
        __builtin_trap();
    }
  }
  return 0;
}
