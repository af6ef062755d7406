// libFuzzer target: one /proc/net/tcp{,6} line on any bytes. Invariants: a parsed socket has the
// family the file says, a state TCP has, and a TIME_WAIT left only in TIME_WAIT, at most an hour.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
import connpolicy;

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  for (const bool v6 : {false, true}) {
    const auto use = cp::detail::parse_proc_net_tcp_line(line, v6, 100);
    if (!use) continue;
    if (use->local.is_v6() != v6 || use->remote.is_v6() != v6) __builtin_trap();
    if (static_cast<int>(use->state) < 1 || static_cast<int>(use->state) > 12) __builtin_trap();
    if (use->time_wait_left.has_value() != (use->state == cp::TcpState::time_wait)) __builtin_trap();
    if (use->time_wait_left &&
        (*use->time_wait_left < std::chrono::milliseconds(0) || *use->time_wait_left > std::chrono::hours(1)))
      __builtin_trap();
  }
  return 0;
}
