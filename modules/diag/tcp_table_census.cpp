// The census on Windows: the IP Helper API's TCP tables (GetExtendedTcpTable, what `netstat -an`
// prints), IPv4 and IPv6. Windows lists TIME_WAIT connections but does not say how long each has
// left, so their time_wait_left stays empty; FixedPortRotation then keeps such a port and looks
// again a second later. Compiled on Windows only (CMake), like the Winsock system API.
module;
#include <algorithm>
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

// walk_tcp_table (census_parsers.cpp) reads the rows by these layouts, on any platform.
static_assert(offsetof(MIB_TCPTABLE_OWNER_PID, table) == 4 && sizeof(MIB_TCPROW_OWNER_PID) == 24);
static_assert(offsetof(MIB_TCP6TABLE_OWNER_PID, table) == 4 && sizeof(MIB_TCP6ROW_OWNER_PID) == 56);
static_assert(offsetof(MIB_TCP6ROW_OWNER_PID, dwLocalPort) == 20 && offsetof(MIB_TCP6ROW_OWNER_PID, dwState) == 48);

// One table (AF_INET or AF_INET6) with every TCP endpoint. The table may grow between the call
// that sizes the buffer and the one that fills it: a few tries, each with the size Windows asked
// for. The row count is checked against the bytes the table really has before any row is read.
expected<std::vector<unsigned char>, NetError> tcp_table(ULONG family) {
  std::vector<unsigned char> buffer(64 * 1024);
  for (int attempt = 0; attempt < 4; ++attempt) {
    ULONG size = static_cast<ULONG>(buffer.size());
    const DWORD rc = ::GetExtendedTcpTable(buffer.data(), &size, FALSE, family, TCP_TABLE_OWNER_PID_ALL, 0);
    if (rc == NO_ERROR) {
      buffer.resize(std::min<std::size_t>(size, buffer.size()));  // walk_tcp_table checks the rows against it
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

}  // namespace

expected<std::vector<PortUse>, NetError> survey_tcp_table(PortRange range) {
  std::vector<PortUse> uses;
  auto v4 = tcp_table(AF_INET);
  if (!v4) return unexpected(std::move(v4).error());
  if (!walk_tcp_table(*v4, false, range, uses))
    return unexpected(NetError(Step::census, std::error_code(ERROR_INVALID_DATA, std::system_category()))
                          .with_detail("GetExtendedTcpTable(AF_INET): more rows than bytes"));
  auto v6 = tcp_table(AF_INET6);
  if (!v6 && v6.error().code() == std::error_code(ERROR_NOT_SUPPORTED, std::system_category()))
    return uses;  // a host without IPv6: its IPv4 table is the whole answer
  if (!v6) return unexpected(std::move(v6).error());
  if (!walk_tcp_table(*v6, true, range, uses))
    return unexpected(NetError(Step::census, std::error_code(ERROR_INVALID_DATA, std::system_category()))
                          .with_detail("GetExtendedTcpTable(AF_INET6): more rows than bytes"));
  return uses;
}

}  // namespace connpolicy::detail
