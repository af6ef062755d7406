// Error vocabulary: portable conditions (Errc), the step that failed (Step), connpolicy's own
// error codes (LibraryError), and the one table that maps errno and Winsock codes to conditions.
//
// Model: Asio / <system_error>. A NetError's code() is what the OS said (errno, or the Winsock
// code on Windows) or what connpolicy decided (LibraryError). To ask "what kind of failure is
// this?", compare the NetError itself with an Errc: the one comparison that is always right.
//     if (err == connpolicy::Errc::local_port_busy) ...   // EADDRINUSE and 10048 alike
// It compares err.condition(), which also knows the step and whether the kernel chose the local
// port. A bare std::error_code compared with an Errc (`err.code() == Errc::x`) can only use the
// table below, so it answers for the code alone and differs in exactly three cases (see
// NetError::condition): EADDRNOTAVAIL or EADDRINUSE/10048 at connect from a kernel-chosen port
// (local_ports_exhausted), EADDRNOTAVAIL at connect from our own port (local_port_busy), and
// EADDRINUSE at bind to port 0 (local_ports_exhausted).
module;
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
export module connpolicy.core:error;

export namespace connpolicy {

// The one place that names the expected type, so it could be swapped (e.g. for tl::expected).
template <class T, class E>
using expected = std::expected<T, E>;
template <class E>
using unexpected = std::unexpected<E>;

// What kind of failure, whatever the platform said. Compare an error_code with these.
enum class Errc : int {
  local_port_busy = 1,    // EADDRINUSE, WSAEADDRINUSE 10048: the local port is taken (often TIME_WAIT)
  local_ports_exhausted,  // no local port left: ephemeral range or a rotation range used up
  connection_refused,     // nothing listens there
  timed_out,              // the peer did not answer in time
  network_unreachable,
  host_unreachable,
  address_not_available,  // the local address is not on this host (or the 4-tuple is taken)
  cancelled,              // a stop_token asked to stop
  invalid_argument,       // bad input: an endpoint, a port range, an option
  permission_denied,      // privileged port, firewall
  connection_reset,
  connection_aborted,
  address_family_not_supported,
  too_many_open_sockets,  // EMFILE / ENFILE / WSAEMFILE: out of descriptors
  network_down,
  out_of_resources,    // the kernel is short of buffers or memory
  host_not_found,      // the name does not exist, or has no address (EAI_NONAME, WSAHOST_NOT_FOUND 11001)
  try_again,           // the name server did not answer in time: try later (EAI_AGAIN, WSATRY_AGAIN 11002)
  name_server_failed,  // the name server failed for good (EAI_FAIL, WSANO_RECOVERY 11003)
  other,               // none of the above: look at code() itself
};

// Which step failed.
//   socket, set_option, bind, connect, wait   making a connection (wait: for the handshake)
//   parse         reading an address from text or from a sockaddr (Endpoint::parse, from_sockaddr)
//   read_address  asking a socket for its own or its peer's address (getsockname, getpeername)
//   census        asking the kernel which local ports are in use or in TIME_WAIT (connpolicy.diag)
//   configure     checking the options a policy or a Connector was given, before any syscall
//   resolve       asking for a name's addresses (getaddrinfo, a Resolver)
enum class Step : std::uint8_t {
  socket,
  set_option,
  bind,
  connect,
  wait,
  parse,
  read_address,
  census,
  configure,
  resolve
};

// Why a connect stopped retrying (NetError::gave_up(), AttemptEvent::gave_up): the retry policy's
// word, beside the failure that ended the last round.
enum class GiveUp : std::uint8_t {
  no_retry,      // the policy never retries (NoRetry)
  max_attempts,  // the policy's max_attempts rounds were made
  deadline,      // the next wait would end after the deadline
  retry_budget,  // a RetryBudget shared with other connects refused: too many failures lately
};

// Failures that connpolicy itself decides, not the OS. Each is equivalent to one Errc.
enum class LibraryError : int {
  invalid_endpoint = 1,  // an endpoint that cannot be used: unreadable text or sockaddr, no endpoint
                         // at all, or an address TCP cannot connect to or from  -> invalid_argument
  invalid_port_range,    // first > last, a port outside 1-65535, or a range the kernel would
                         // ignore (KernelPortRange outside the system's range)   -> invalid_argument
  all_ports_cooling,     // every port of a rotation is cooling down or in use    -> local_ports_exhausted
  deadline_exceeded,     // the overall deadline passed                           -> timed_out
  cancelled,             // a stop_token asked to stop                            -> cancelled
  invalid_option,        // an option that means nothing (a negative timeout)     -> invalid_argument
  no_address,            // a name resolved to no address of any family asked      -> host_not_found
};

// Categories. errno codes use std::system_category() (std::generic_category() compares equal
// too). Winsock codes use std::system_category() on Windows; winsock_category() lets them be
// carried and tested on any platform (e.g. a fake system that replays Windows behaviour).
const std::error_category& condition_category() noexcept;  // Errc
const std::error_category& library_category() noexcept;    // LibraryError
const std::error_category& winsock_category() noexcept;    // Winsock codes, anywhere
// getaddrinfo's EAI_* return values (POSIX; their numbers differ between systems, and collide with
// errno values on some, hence a category of their own). On Windows getaddrinfo returns Winsock
// codes (WSAHOST_NOT_FOUND ...), which stay in the Winsock category.
const std::error_category& resolver_category() noexcept;

std::error_condition make_error_condition(Errc e) noexcept;
std::error_code make_error_code(LibraryError e) noexcept;
std::error_code make_winsock_error(int wsa_code) noexcept;
std::error_code make_resolver_error(int eai_code) noexcept;
// An errno value as an error_code, as the system layer reports it.
std::error_code make_system_error(int errno_value) noexcept;

// Winsock error numbers, spelled out so they can be named on every platform.
namespace winsock {
inline constexpr int eintr = 10004, eacces = 10013, einval = 10022, emfile = 10024, enoprotoopt = 10042,
                     ewouldblock = 10035, einprogress = 10036, eafnosupport = 10047, eaddrinuse = 10048,
                     eaddrnotavail = 10049, enetdown = 10050, enetunreach = 10051, econnaborted = 10053,
                     econnreset = 10054, enobufs = 10055, etimedout = 10060, econnrefused = 10061, ehostdown = 10064,
                     ehostunreach = 10065, ecancelled = 10103, type_not_found = 10109, host_not_found = 11001,
                     try_again = 11002, no_recovery = 11003, no_data = 11004;
}  // namespace winsock

// One row of the mapping table: a condition, and the errno, Winsock and getaddrinfo code that
// mean it (0 where there is none). A condition may have several rows; its first row gives
// the codes that stand for it (see posix_code_of / winsock_code_of).
struct ErrorMapping {
  Errc condition;
  int posix;    // errno value, 0 if none
  int winsock;  // Winsock code, 0 if none
  std::string_view posix_name;
  std::string_view winsock_name;
  int resolver = 0;  // EAI_* value of this platform's getaddrinfo (POSIX), 0 if none
  std::string_view resolver_name = {};
};

// The table itself, for documentation, tests and tools.
std::span<const ErrorMapping> error_mappings() noexcept;

// code -> condition, through the table (Errc::other when the table does not know the code).
Errc condition_of(const std::error_code& code) noexcept;
// condition -> the errno / Winsock code that stands for it (0 when the platform has none).
int posix_code_of(Errc condition) noexcept;
int winsock_code_of(Errc condition) noexcept;
// "EADDRINUSE", "WSAEADDRINUSE", "LibraryError::all_ports_cooling"; empty when unknown.
std::string_view code_name(const std::error_code& code) noexcept;
// "local port busy", "connection refused", ...
std::string_view describe(Errc condition) noexcept;
std::string_view to_string(Step step) noexcept;
std::string_view to_string(GiveUp reason) noexcept;

}  // namespace connpolicy

export template <>
struct std::is_error_condition_enum<connpolicy::Errc> : std::true_type {};
export template <>
struct std::is_error_code_enum<connpolicy::LibraryError> : std::true_type {};
