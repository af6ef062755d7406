// libFuzzer target: Endpoint::parse on any bytes. Invariants: no crash or UB (ASan/UBSan); a
// parsed endpoint round-trips through to_string(); a refusal is invalid_argument with a
// one-line, bounded message that carries no raw control bytes.
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
  auto e = cp::Endpoint::parse(text);
  if (e) {
    auto again = cp::Endpoint::parse(e->to_string());
    if (!again || *again != *e) __builtin_trap();
    return 0;
  }
  check_refusal(e.error());
  return 0;
}
