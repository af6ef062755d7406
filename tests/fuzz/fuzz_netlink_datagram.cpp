// libFuzzer target: the netlink reply walker on any bytes, as if the kernel (sender 0) had sent
// them, and as if another process had. Invariants: a stranger's datagram is ignored whole; every
// socket read is IPv4 or IPv6 in a state TCP has, no more sockets than messages fit; an error ends
// the walk with an errno in 1..4095.
#include <cstddef>
#include <cstdint>
#include <span>
import connpolicy;

namespace cp = connpolicy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const unsigned char> bytes(data, size);
  const bool single = size > 0 && (data[0] & 1);
  const auto reply = cp::detail::walk_netlink_datagram(bytes, 0, 7, single);
  if (reply.ignored) __builtin_trap();
  if (reply.uses.size() > size / 88) __builtin_trap();  // NLMSG_LENGTH(sizeof(inet_diag_msg)) = 88
  if (single && reply.uses.size() > 1) __builtin_trap();
  for (const cp::PortUse& use : reply.uses) {
    if (use.local.family() != use.remote.family()) __builtin_trap();
    if (static_cast<int>(use.state) < 1 || static_cast<int>(use.state) > 12) __builtin_trap();
    if (use.time_wait_left && use.state != cp::TcpState::time_wait) __builtin_trap();
  }
  if (reply.error != 0 && (!reply.done || reply.error < 1 || reply.error > 4095)) __builtin_trap();
  const auto stranger = cp::detail::walk_netlink_datagram(bytes, 1234, 7, single);
  if (!stranger.ignored || stranger.done || !stranger.uses.empty()) __builtin_trap();
  return 0;
}
