// The census on Windows: the IP Helper API's TCP tables (GetExtendedTcpTable, what `netstat -an`
// prints), IPv4 and IPv6. Windows lists TIME_WAIT connections but does not say how long each has
// left, so their time_wait_left stays empty; FixedPortRotation then keeps such a port and looks
// again a second later. Compiled on Windows only (CMake), like the Winsock system API.
module;
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>
module connpolicy.diag;
import connpolicy.core;

namespace connpolicy::detail {
namespace {

// CLOSED and DELETE_TCB hold no port: empty.
std::optional<TcpState> state_of(DWORD mib_state) noexcept {
  switch (mib_state) {
    case MIB_TCP_STATE_LISTEN: return TcpState::listen;
    case MIB_TCP_STATE_SYN_SENT: return TcpState::syn_sent;
    case MIB_TCP_STATE_SYN_RCVD: return TcpState::syn_recv;
    case MIB_TCP_STATE_ESTAB: return TcpState::established;
    case MIB_TCP_STATE_FIN_WAIT1: return TcpState::fin_wait1;
    case MIB_TCP_STATE_FIN_WAIT2: return TcpState::fin_wait2;
    case MIB_TCP_STATE_CLOSE_WAIT: return TcpState::close_wait;
    case MIB_TCP_STATE_CLOSING: return TcpState::closing;
    case MIB_TCP_STATE_LAST_ACK: return TcpState::last_ack;
    case MIB_TCP_STATE_TIME_WAIT: return TcpState::time_wait;
    default: return std::nullopt;
  }
}

// The table's ports are in network order in the low 16 bits of a DWORD.
std::uint16_t port_of(DWORD port) noexcept { return ntohs(static_cast<u_short>(port & 0xffff)); }

// One table (AF_INET or AF_INET6) with every TCP endpoint. The table may grow between the call
// that sizes the buffer and the one that fills it: a few tries, each with the size Windows asked
// for. The row count is checked against the bytes the table really has before any row is read.
template <class Table>
expected<std::vector<unsigned char>, NetError> tcp_table(ULONG family) {
  std::vector<unsigned char> buffer(64 * 1024);
  for (int attempt = 0; attempt < 4; ++attempt) {
    ULONG size = static_cast<ULONG>(buffer.size());
    const DWORD rc = ::GetExtendedTcpTable(buffer.data(), &size, FALSE, family, TCP_TABLE_OWNER_PID_ALL, 0);
    if (rc == NO_ERROR) {
      const std::size_t header = offsetof(Table, table);
      const auto* t = reinterpret_cast<const Table*>(buffer.data());
      if (size < header || size > buffer.size() || t->dwNumEntries > (size - header) / sizeof(t->table[0]))
        return unexpected(NetError(Step::census, std::error_code(ERROR_INVALID_DATA, std::system_category()))
                              .with_detail("GetExtendedTcpTable: more rows than bytes"));
      return buffer;
    }
    if (rc != ERROR_INSUFFICIENT_BUFFER)
      return unexpected(NetError(Step::census, std::error_code(static_cast<int>(rc), std::system_category()))
                            .with_detail(std::string("GetExtendedTcpTable(") +
                                         (family == AF_INET ? "AF_INET" : "AF_INET6") + ") failed: Windows error " +
                                         std::to_string(rc)));
    buffer.resize(size + size / 4 + 1024);
  }
  return unexpected(NetError(Step::census, std::error_code(ERROR_INSUFFICIENT_BUFFER, std::system_category()))
                        .with_detail("GetExtendedTcpTable: the table kept growing faster than it could be read"));
}

// The rows of `table` whose local port is in `range`; `ends(row, port)` gives the two endpoints.
template <class Table, class Ends>
void collect(const std::vector<unsigned char>& table, PortRange range, Ends ends, std::vector<PortUse>& uses) {
  const auto* t = reinterpret_cast<const Table*>(table.data());
  for (DWORD i = 0; i < t->dwNumEntries; ++i) {
    const auto& row = t->table[i];
    const auto state = state_of(row.dwState);
    const std::uint16_t port = port_of(row.dwLocalPort);
    if (!state || !range.contains(port)) continue;
    const auto [local, remote] = ends(row, port);
    uses.push_back({local, remote, *state, std::nullopt});
  }
}

}  // namespace

expected<std::vector<PortUse>, NetError> survey_tcp_table(PortRange range) {
  std::vector<PortUse> uses;
  auto v4 = tcp_table<MIB_TCPTABLE_OWNER_PID>(AF_INET);
  if (!v4) return unexpected(std::move(v4).error());
  collect<MIB_TCPTABLE_OWNER_PID>(
      *v4, range,
      [](const MIB_TCPROW_OWNER_PID& row, std::uint16_t port) {
        std::array<std::uint8_t, 4> local{}, remote{};
        std::memcpy(local.data(), &row.dwLocalAddr, 4);  // network order, as Endpoint keeps it
        std::memcpy(remote.data(), &row.dwRemoteAddr, 4);
        return std::pair{Endpoint::ipv4(local, port), Endpoint::ipv4(remote, port_of(row.dwRemotePort))};
      },
      uses);
  auto v6 = tcp_table<MIB_TCP6TABLE_OWNER_PID>(AF_INET6);
  if (!v6 && v6.error().code() == std::error_code(ERROR_NOT_SUPPORTED, std::system_category()))
    return uses;  // a host without IPv6: its IPv4 table is the whole answer
  if (!v6) return unexpected(std::move(v6).error());
  collect<MIB_TCP6TABLE_OWNER_PID>(
      *v6, range,
      [](const MIB_TCP6ROW_OWNER_PID& row, std::uint16_t port) {
        std::array<std::uint8_t, 16> local{}, remote{};
        std::memcpy(local.data(), row.ucLocalAddr, 16);
        std::memcpy(remote.data(), row.ucRemoteAddr, 16);
        return std::pair{Endpoint::ipv6(local, port, row.dwLocalScopeId),
                         Endpoint::ipv6(remote, port_of(row.dwRemotePort), row.dwRemoteScopeId)};
      },
      uses);
  return uses;
}

}  // namespace connpolicy::detail
