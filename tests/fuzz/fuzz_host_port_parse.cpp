// libFuzzer target: HostPort::parse on any bytes. Invariants: no crash or UB (ASan/UBSan); a
// parsed HostPort round-trips through to_string() and agrees with Endpoint::parse on numeric
// text; a refusal is invalid_argument with a one-line, bounded message without raw control bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
import connpolicy;
#include "refusal.hpp"

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto h = cp::HostPort::parse(text);
  if (h) {
    auto again = cp::HostPort::parse(h->to_string());
    if (!again || *again != *h) __builtin_trap();
    if (h->numeric() && cp::Endpoint::parse(h->to_string()) != *h->numeric()) __builtin_trap();
    if (!h->numeric() && (h->host().empty() || h->host().size() > 254)) __builtin_trap();
    return 0;
  }
  check_refusal(h.error());
  return 0;
}
