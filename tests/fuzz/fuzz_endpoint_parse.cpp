// libFuzzer target: Endpoint::parse on any bytes. Invariants: no crash or UB (ASan/UBSan); a
// parsed endpoint round-trips through to_string(); a refusal is invalid_argument with a
// one-line, bounded message that carries no raw control bytes.
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <string>
#include <string_view>
import connpolicy;

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto e = cp::Endpoint::parse(text);
  if (e) {
    auto again = cp::Endpoint::parse(e->to_string());
    if (!again || *again != *e) __builtin_trap();
    return 0;
  }
  if (e.error().code() != cp::Errc::invalid_argument) __builtin_trap();
  const std::string m = e.error().message();
  if (m.size() > 1024) __builtin_trap();
  for (char c : m)
    if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
  return 0;
}
