// The errno / Winsock <-> Errc table, both ways, and the categories around it.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
import connpolicy;

namespace cp = connpolicy;

TEST_CASE("every errno in the table compares equal to its condition", "[error]") {
  for (const auto& row : cp::error_mappings()) {
    if (row.posix == 0) continue;
    INFO(row.posix_name);
    CHECK(cp::make_system_error(row.posix) == row.condition);
    CHECK(std::error_code(row.posix, std::generic_category()) == row.condition);
    CHECK(cp::condition_of(cp::make_system_error(row.posix)) == row.condition);
    CHECK(cp::code_name(cp::make_system_error(row.posix)) == row.posix_name);
  }
}

TEST_CASE("every Winsock code in the table compares equal to its condition", "[error][windows]") {
  for (const auto& row : cp::error_mappings()) {
    if (row.winsock == 0) continue;
    INFO(row.winsock_name);
    CHECK(cp::make_winsock_error(row.winsock) == row.condition);
    CHECK(cp::condition_of(cp::make_winsock_error(row.winsock)) == row.condition);
    CHECK(cp::code_name(cp::make_winsock_error(row.winsock)) == row.winsock_name);
  }
}

TEST_CASE("every getaddrinfo code in the table compares equal to its condition", "[error][resolve]") {
  int rows = 0;
  for (const auto& row : cp::error_mappings()) {
    if (row.resolver == 0) continue;
    ++rows;
    INFO(row.resolver_name);
    const auto code = cp::make_resolver_error(row.resolver);
    CHECK(code == row.condition);
    CHECK(cp::condition_of(code) == row.condition);
    CHECK(cp::code_name(code) == row.resolver_name);
    CHECK(code.message().starts_with(std::string(row.resolver_name)));
    // The same number in errno's category means something else (or nothing).
    CHECK(cp::code_name(cp::make_system_error(row.resolver)) != row.resolver_name);
  }
#ifdef _WIN32
  CHECK(rows == 0);  // getaddrinfo speaks Winsock there
#else
  CHECK(rows >= 6);
  const auto noname =
      std::ranges::find(cp::error_mappings(), std::string_view("EAI_NONAME"), &cp::ErrorMapping::resolver_name);
  REQUIRE(noname != cp::error_mappings().end());
  const cp::NetError e(cp::Step::resolve, cp::make_resolver_error(noname->resolver));
  CHECK(e == cp::Errc::host_not_found);
  CHECK(e.message().find("resolve: host not found (EAI_NONAME, getaddrinfo ") == 0);
#endif
  // Windows' getaddrinfo speaks Winsock.
  CHECK(cp::make_winsock_error(11001) == cp::Errc::host_not_found);
  CHECK(cp::make_winsock_error(11002) == cp::Errc::try_again);
  CHECK(cp::make_winsock_error(11003) == cp::Errc::name_server_failed);
  CHECK(cp::make_winsock_error(11004) == cp::Errc::host_not_found);
}

TEST_CASE("each condition maps back to codes that map to it again", "[error]") {
  for (int i = static_cast<int>(cp::Errc::local_port_busy); i < static_cast<int>(cp::Errc::other); ++i) {
    const auto condition = static_cast<cp::Errc>(i);
    INFO(std::string(cp::describe(condition)));
    const int posix = cp::posix_code_of(condition);
    const int winsock = cp::winsock_code_of(condition);
    CHECK((posix != 0 || winsock != 0));  // every condition has a code on some platform
    if (posix != 0) CHECK(cp::condition_of(cp::make_system_error(posix)) == condition);
    if (winsock != 0) CHECK(cp::condition_of(cp::make_winsock_error(winsock)) == condition);
  }
}

TEST_CASE("the seed's codes: EADDRINUSE and 10048 are both local_port_busy", "[error][seed]") {
  CHECK(cp::make_system_error(EADDRINUSE) == cp::Errc::local_port_busy);
  CHECK(cp::make_winsock_error(10048) == cp::Errc::local_port_busy);
  CHECK(cp::make_winsock_error(10049) == cp::Errc::address_not_available);
  CHECK(cp::make_winsock_error(10055) == cp::Errc::local_ports_exhausted);
  CHECK(cp::make_winsock_error(10060) == cp::Errc::timed_out);
  CHECK(cp::make_winsock_error(10061) == cp::Errc::connection_refused);
  CHECK(cp::make_winsock_error(10065) == cp::Errc::host_unreachable);
  CHECK(cp::posix_code_of(cp::Errc::local_port_busy) == EADDRINUSE);
  CHECK(cp::winsock_code_of(cp::Errc::local_port_busy) == 10048);
}

TEST_CASE("codes do not compare equal to other conditions", "[error]") {
  CHECK(cp::make_system_error(ECONNREFUSED) != cp::Errc::local_port_busy);
  CHECK(cp::make_winsock_error(10048) != cp::Errc::connection_refused);
  // The same number means different things on the two platforms' tables.
  CHECK(cp::make_system_error(10048) != cp::Errc::local_port_busy);
}

TEST_CASE("the table maps each code to one condition only", "[error]") {
  std::set<int> posix, winsock;
  for (const auto& row : cp::error_mappings()) {
    if (row.posix != 0) CHECK(posix.insert(row.posix).second);
    if (row.winsock != 0) CHECK(winsock.insert(row.winsock).second);
    CHECK(row.condition != cp::Errc::other);
  }
}

TEST_CASE("unknown codes are Errc::other and have no name", "[error]") {
  const auto unknown = cp::make_system_error(ENOTSOCK);
  CHECK(cp::condition_of(unknown) == cp::Errc::other);
  CHECK(cp::code_name(unknown).empty());
  CHECK(cp::condition_of(cp::make_winsock_error(12345)) == cp::Errc::other);
  CHECK(cp::condition_of(std::error_code{}) == cp::Errc::other);
  CHECK(cp::condition_of(std::make_error_code(std::io_errc::stream)) == cp::Errc::other);
}

TEST_CASE("library errors are equivalent to their conditions", "[error]") {
  using cp::LibraryError;
  CHECK(std::error_code(LibraryError::invalid_endpoint) == cp::Errc::invalid_argument);
  CHECK(std::error_code(LibraryError::invalid_port_range) == cp::Errc::invalid_argument);
  CHECK(std::error_code(LibraryError::all_ports_cooling) == cp::Errc::local_ports_exhausted);
  CHECK(std::error_code(LibraryError::deadline_exceeded) == cp::Errc::timed_out);
  CHECK(std::error_code(LibraryError::cancelled) == cp::Errc::cancelled);
  CHECK(std::error_code(LibraryError::cancelled) != cp::Errc::timed_out);
  CHECK(cp::code_name(LibraryError::all_ports_cooling) == "LibraryError::all_ports_cooling");
}

TEST_CASE("categories have names and messages", "[error]") {
  CHECK(std::string(cp::condition_category().name()) == "connpolicy");
  CHECK(std::string(cp::winsock_category().name()) == "winsock");
  CHECK(cp::make_winsock_error(10048).message() == "WSAEADDRINUSE: local port busy");
  CHECK(cp::make_winsock_error(4242).message() == "Winsock error 4242");
  CHECK(cp::make_error_condition(cp::Errc::connection_refused).message() == "connection refused");
  CHECK(cp::make_error_code(cp::LibraryError::all_ports_cooling).message().find("cooling") != std::string::npos);
  // A Winsock code's default condition is the portable one, so std::error_condition works too.
  CHECK(cp::make_winsock_error(10061).default_error_condition() == cp::Errc::connection_refused);
}

TEST_CASE("steps have names", "[error]") {
  CHECK(cp::to_string(cp::Step::bind) == "bind");
  CHECK(cp::to_string(cp::Step::connect) == "connect");
  CHECK(cp::to_string(cp::Step::parse) == "parse");
  CHECK(cp::to_string(cp::Step::read_address) == "read_address");
}
