// libFuzzer target: PortRange::parse on any bytes. Invariants: a parsed range is 1-65535 with
// first <= last and parses back from to_string(); a refusal is invalid_argument, one bounded line.
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <string>
#include <string_view>
import connpolicy;
#include "refusal.hpp"

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = cp::PortRange::parse(text);
  if (r) {
    if (r->first() < 1 || r->first() > r->last() || r->size() == 0) __builtin_trap();
    auto again = cp::PortRange::parse(r->to_string());
    if (!again || *again != *r) __builtin_trap();
    return 0;
  }
  check_refusal(r.error());
  return 0;
}
