module;
#include <algorithm>
#include <array>
#include <cerrno>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#ifndef _WIN32
#include <netdb.h>  // EAI_*
#endif
module connpolicy.core;

namespace connpolicy {
namespace {

namespace ws = winsock;
using enum Errc;

// getaddrinfo's codes. On Windows it returns Winsock codes, which the Winsock column holds.
#ifdef _WIN32
constexpr int eai_noname = 0, eai_again = 0, eai_fail = 0, eai_family = 0, eai_memory = 0, eai_service = 0,
              eai_nodata = 0;
#else
constexpr int eai_noname = EAI_NONAME, eai_again = EAI_AGAIN, eai_fail = EAI_FAIL, eai_family = EAI_FAMILY,
              eai_memory = EAI_MEMORY, eai_service = EAI_SERVICE;
#ifdef EAI_NODATA  // glibc with _GNU_SOURCE, the BSDs: a name with no address of the asked family
constexpr int eai_nodata = EAI_NODATA;
#else
constexpr int eai_nodata = 0;
#endif
#endif

// The one table: errno and Winsock codes for each condition. First row of a condition = the
// codes that stand for it. Ports exhausted has no errno of its own on POSIX: Linux reports
// EADDRNOTAVAIL at connect() or EADDRINUSE at bind(port 0); NetError::condition() tells those
// apart by the step and the local port.
constexpr std::array<ErrorMapping, 27> table{{
    {local_port_busy, EADDRINUSE, ws::eaddrinuse, "EADDRINUSE", "WSAEADDRINUSE"},
    {local_ports_exhausted, 0, ws::enobufs, "", "WSAENOBUFS"},
    {connection_refused, ECONNREFUSED, ws::econnrefused, "ECONNREFUSED", "WSAECONNREFUSED"},
    {timed_out, ETIMEDOUT, ws::etimedout, "ETIMEDOUT", "WSAETIMEDOUT"},
    {network_unreachable, ENETUNREACH, ws::enetunreach, "ENETUNREACH", "WSAENETUNREACH"},
    {host_unreachable, EHOSTUNREACH, ws::ehostunreach, "EHOSTUNREACH", "WSAEHOSTUNREACH"},
#ifdef EHOSTDOWN
    {host_unreachable, EHOSTDOWN, ws::ehostdown, "EHOSTDOWN", "WSAEHOSTDOWN"},
#else  // Windows' C library has no EHOSTDOWN; Winsock has 10064
    {host_unreachable, 0, ws::ehostdown, "", "WSAEHOSTDOWN"},
#endif
    {address_not_available, EADDRNOTAVAIL, ws::eaddrnotavail, "EADDRNOTAVAIL", "WSAEADDRNOTAVAIL"},
    {cancelled, ECANCELED, ws::ecancelled, "ECANCELED", "WSAECANCELLED"},
    {invalid_argument, EINVAL, ws::einval, "EINVAL", "WSAEINVAL"},
    {permission_denied, EACCES, ws::eacces, "EACCES", "WSAEACCES"},
    {permission_denied, EPERM, 0, "EPERM", ""},
    {connection_reset, ECONNRESET, ws::econnreset, "ECONNRESET", "WSAECONNRESET"},
    {connection_aborted, ECONNABORTED, ws::econnaborted, "ECONNABORTED", "WSAECONNABORTED"},
    {address_family_not_supported, EAFNOSUPPORT, ws::eafnosupport, "EAFNOSUPPORT", "WSAEAFNOSUPPORT"},
    {too_many_open_sockets, EMFILE, ws::emfile, "EMFILE", "WSAEMFILE"},
    {too_many_open_sockets, ENFILE, 0, "ENFILE", ""},
    {network_down, ENETDOWN, ws::enetdown, "ENETDOWN", "WSAENETDOWN"},
    {out_of_resources, ENOBUFS, 0, "ENOBUFS", ""},
    {out_of_resources, ENOMEM, 0, "ENOMEM", ""},
    {host_not_found, 0, ws::host_not_found, "", "WSAHOST_NOT_FOUND", eai_noname, "EAI_NONAME"},
    {host_not_found, 0, ws::no_data, "", "WSANO_DATA", eai_nodata, "EAI_NODATA"},
    {try_again, 0, ws::try_again, "", "WSATRY_AGAIN", eai_again, "EAI_AGAIN"},
    {name_server_failed, 0, ws::no_recovery, "", "WSANO_RECOVERY", eai_fail, "EAI_FAIL"},
    {address_family_not_supported, 0, 0, "", "", eai_family, "EAI_FAMILY"},
    {out_of_resources, 0, 0, "", "", eai_memory, "EAI_MEMORY"},
    {invalid_argument, 0, ws::type_not_found, "", "WSATYPE_NOT_FOUND", eai_service, "EAI_SERVICE"},
}};

bool is_winsock(const std::error_code& code) noexcept {
  if (code.category() == winsock_category()) return true;
#ifdef _WIN32
  return code.category() == std::system_category();
#else
  return false;
#endif
}

bool is_errno(const std::error_code& code) noexcept {
  if (code.category() == std::generic_category()) return true;
#ifdef _WIN32
  return false;
#else
  return code.category() == std::system_category();
#endif
}

const ErrorMapping* row_of(const std::error_code& code) noexcept {
  if (!code || code.value() == 0) return nullptr;
  if (code.category() == resolver_category()) {
    auto it = std::ranges::find(table, code.value(), &ErrorMapping::resolver);
    return it == table.end() ? nullptr : &*it;
  }
  const bool ws = is_winsock(code);
  if (!ws && !is_errno(code)) return nullptr;
  auto it = std::ranges::find_if(
      table, [&](const ErrorMapping& m) { return ws ? m.winsock == code.value() : m.posix == code.value(); });
  return it == table.end() ? nullptr : &*it;
}

Errc library_condition(LibraryError e) noexcept {
  switch (e) {
    case LibraryError::invalid_endpoint:
    case LibraryError::invalid_port_range:
    case LibraryError::invalid_option: return invalid_argument;
    case LibraryError::all_ports_cooling: return local_ports_exhausted;
    case LibraryError::deadline_exceeded: return timed_out;
    case LibraryError::cancelled: return cancelled;
    case LibraryError::no_address: return host_not_found;
  }
  return other;
}

std::string_view library_error_name(int value) noexcept {
  switch (static_cast<LibraryError>(value)) {
    case LibraryError::invalid_endpoint: return "LibraryError::invalid_endpoint";
    case LibraryError::invalid_port_range: return "LibraryError::invalid_port_range";
    case LibraryError::all_ports_cooling: return "LibraryError::all_ports_cooling";
    case LibraryError::deadline_exceeded: return "LibraryError::deadline_exceeded";
    case LibraryError::cancelled: return "LibraryError::cancelled";
    case LibraryError::invalid_option: return "LibraryError::invalid_option";
    case LibraryError::no_address: return "LibraryError::no_address";
  }
  return {};
}

class ConditionCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "connpolicy"; }
  std::string message(int value) const override { return std::string(describe(static_cast<Errc>(value))); }
  bool equivalent(const std::error_code& code, int condition) const noexcept override {
    return condition_of(code) == static_cast<Errc>(condition);
  }
};

class LibraryCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "connpolicy.library"; }
  std::string message(int value) const override {
    switch (static_cast<LibraryError>(value)) {
      case LibraryError::invalid_endpoint: return "invalid endpoint";
      case LibraryError::invalid_port_range: return "invalid port range";
      case LibraryError::all_ports_cooling: return "every port of the range is busy or cooling down";
      case LibraryError::deadline_exceeded: return "deadline exceeded";
      case LibraryError::cancelled: return "cancelled";
      case LibraryError::invalid_option: return "an option that means nothing";
      case LibraryError::no_address: return "the name has no address";
    }
    return "unknown connpolicy error " + std::to_string(value);
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    return make_error_condition(library_condition(static_cast<LibraryError>(value)));
  }
};

// A category whose codes are one column of the table (Winsock's, getaddrinfo's): named and
// described from the table, equivalent to the row's condition.
template <int ErrorMapping::* Code, std::string_view ErrorMapping::* Name>
class TableCategory final : public std::error_category {
 public:
  TableCategory(const char* name, const char* unknown) noexcept : name_(name), unknown_(unknown) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int value) const override {
    auto it = std::ranges::find(table, value, Code);
    if (value != 0 && it != table.end()) return std::string((*it).*Name) + ": " + std::string(describe(it->condition));
    return unknown_ + std::to_string(value);
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    Errc c = condition_of(std::error_code(value, *this));
    return c == other ? std::error_condition(value, *this) : make_error_condition(c);
  }

 private:
  const char* name_;
  std::string unknown_;
};
using WinsockCategory = TableCategory<&ErrorMapping::winsock, &ErrorMapping::winsock_name>;
using ResolverCategory = TableCategory<&ErrorMapping::resolver, &ErrorMapping::resolver_name>;

}  // namespace

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category("connpolicy.resolver", "getaddrinfo error ");
  return category;
}
std::error_code make_resolver_error(int eai_code) noexcept { return {eai_code, resolver_category()}; }

const std::error_category& condition_category() noexcept {
  static const ConditionCategory category;
  return category;
}
const std::error_category& library_category() noexcept {
  static const LibraryCategory category;
  return category;
}
const std::error_category& winsock_category() noexcept {
  static const WinsockCategory category("winsock", "Winsock error ");
  return category;
}

std::error_condition make_error_condition(Errc e) noexcept { return {static_cast<int>(e), condition_category()}; }
std::error_code make_error_code(LibraryError e) noexcept { return {static_cast<int>(e), library_category()}; }
std::error_code make_winsock_error(int wsa_code) noexcept { return {wsa_code, winsock_category()}; }
std::error_code make_system_error(int errno_value) noexcept {
#ifdef _WIN32
  return {errno_value, std::generic_category()};  // Windows' system_category holds Win32/Winsock codes
#else
  return {errno_value, std::system_category()};
#endif
}

std::span<const ErrorMapping> error_mappings() noexcept { return table; }

Errc condition_of(const std::error_code& code) noexcept {
  if (code.category() == library_category()) return library_condition(static_cast<LibraryError>(code.value()));
  const ErrorMapping* row = row_of(code);
  return row ? row->condition : other;
}

int posix_code_of(Errc condition) noexcept {
  auto it = std::ranges::find(table, condition, &ErrorMapping::condition);
  return it == table.end() ? 0 : it->posix;
}

int winsock_code_of(Errc condition) noexcept {
  auto it = std::ranges::find(table, condition, &ErrorMapping::condition);
  return it == table.end() ? 0 : it->winsock;
}

std::string_view code_name(const std::error_code& code) noexcept {
  if (code.category() == library_category()) return library_error_name(code.value());
  const ErrorMapping* row = row_of(code);
  if (!row) return {};
  if (code.category() == resolver_category()) return row->resolver_name;
  return is_winsock(code) ? row->winsock_name : row->posix_name;
}

std::string_view describe(Errc condition) noexcept {
  switch (condition) {
    case local_port_busy: return "local port busy";
    case local_ports_exhausted: return "local ports exhausted";
    case connection_refused: return "connection refused";
    case timed_out: return "timed out";
    case network_unreachable: return "network unreachable";
    case host_unreachable: return "host unreachable";
    case address_not_available: return "address not available";
    case cancelled: return "cancelled";
    case invalid_argument: return "invalid argument";
    case permission_denied: return "permission denied";
    case connection_reset: return "connection reset";
    case connection_aborted: return "connection aborted";
    case address_family_not_supported: return "address family not supported";
    case too_many_open_sockets: return "too many open sockets";
    case network_down: return "network down";
    case out_of_resources: return "out of resources";
    case host_not_found: return "host not found";
    case try_again: return "name lookup failed for now (try again)";
    case name_server_failed: return "name server failed";
    case other: return "error";
  }
  return "error";
}

std::string_view to_string(GiveUp reason) noexcept {
  switch (reason) {
    case GiveUp::no_retry: return "the retry policy does not retry";
    case GiveUp::max_attempts: return "the retry policy's max_attempts was reached";
    case GiveUp::deadline: return "the next wait would end after the deadline";
    case GiveUp::retry_budget:
      return "the shared retry budget refused (too many failed rounds lately across the connects that share it; "
             "it refills as connects succeed)";
  }
  return "gave up";
}

std::string_view to_string(Step step) noexcept {
  switch (step) {
    case Step::socket: return "socket";
    case Step::set_option: return "set_option";
    case Step::bind: return "bind";
    case Step::connect: return "connect";
    case Step::wait: return "wait";
    case Step::parse: return "parse";
    case Step::read_address: return "read_address";
    case Step::census: return "census";
    case Step::configure: return "configure";
    case Step::resolve: return "resolve";
  }
  return "step";
}

}  // namespace connpolicy
