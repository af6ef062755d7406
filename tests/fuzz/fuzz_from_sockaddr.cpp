// libFuzzer target: Endpoint::from_sockaddr on any bytes and any claimed length. Invariants: an
// accepted address converts back to the same bytes' meaning (to_sockaddr then from_sockaddr
// gives the same Endpoint); anything else is refused without reading past the storage, with
// invalid_argument and one bounded line, as its comment promises.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <cstring>
#include <sys/socket.h>
import connpolicy;
#include "refusal.hpp"

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  sockaddr_storage storage{};
  const std::size_t claimed = data[0];  // the length the "kernel" reports, 0-255
  std::memcpy(&storage, data + 1, std::min(size - 1, sizeof storage));
  auto e = cp::Endpoint::from_sockaddr(storage, std::min(claimed, sizeof storage));
  if (!e) {
    check_refusal(e.error());
    return 0;
  }
  sockaddr_storage back{};
  const std::size_t length = e->to_sockaddr(back);
  auto again = cp::Endpoint::from_sockaddr(back, length);
  if (!again || *again != *e) __builtin_trap();
  // Every address a socket can report has a text form that parses back to it.
  auto parsed = cp::Endpoint::parse(e->to_string());
  if (!parsed || *parsed != *e) __builtin_trap();
  return 0;
}
