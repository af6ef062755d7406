// Endpoint: parse, format, compare, hash, sockaddr conversion.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/socket.h>
#endif
import connpolicy;

namespace cp = connpolicy;
using Catch::Matchers::Contains;

TEST_CASE("parse reads IPv4 endpoints", "[endpoint]") {
  auto e = cp::Endpoint::parse("127.0.0.1:80");
  REQUIRE(e);
  CHECK(e->is_v4());
  CHECK(e->port() == 80);
  CHECK(*e == cp::Endpoint::loopback_v4(80));
  CHECK(e->is_loopback());
  CHECK(cp::Endpoint::parse("0.0.0.0:0").value() == cp::Endpoint{});
  CHECK(cp::Endpoint::parse("255.255.255.255:65535").value().port() == 65535);
  CHECK(cp::Endpoint::parse("10.0.0.1:443").value().bytes()[0] == 10);
}

TEST_CASE("parse reads IPv6 endpoints, with and without scope id", "[endpoint]") {
  auto e = cp::Endpoint::parse("[::1]:80");
  REQUIRE(e);
  CHECK(e->is_v6());
  CHECK(*e == cp::Endpoint::loopback_v6(80));
  CHECK(e->is_loopback());
  auto scoped = cp::Endpoint::parse("[fe80::1%7]:8080");
  REQUIRE(scoped);
  CHECK(scoped->scope_id() == 7);
  CHECK(scoped->port() == 8080);
  CHECK(cp::Endpoint::parse("[::]:1").value() == cp::Endpoint::any_v6(1));
#ifndef _WIN32  // Linux names its loopback interface "lo"; Windows names differ per machine
  auto lo = cp::Endpoint::parse("[fe80::1%lo]:80");  // interface names become their index
  REQUIRE(lo);
  CHECK(lo->scope_id() != 0);
#endif
  auto mapped = cp::Endpoint::parse("[::ffff:127.0.0.1]:80");
  REQUIRE(mapped);
  CHECK(mapped->is_v6());
}

TEST_CASE("to_string round-trips through parse", "[endpoint]") {
  for (std::string_view text : {"127.0.0.1:80", "0.0.0.0:0", "192.168.10.200:65535", "[::1]:80", "[::]:0",
                                "[2001:db8::8:800:200c:417a]:443", "[fe80::1%3]:9", "[::ffff:10.1.2.3]:7"}) {
    INFO(text);
    auto e = cp::Endpoint::parse(text);
    REQUIRE(e);
    CHECK(e->to_string() == text);
    CHECK(cp::Endpoint::parse(e->to_string()).value() == *e);
  }
  // Non-canonical IPv6 text comes back canonical, and still round-trips from there.
  auto e = cp::Endpoint::parse("[0:0:0:0:0:0:0:1]:80");
  REQUIRE(e);
  CHECK(e->to_string() == "[::1]:80");
}

TEST_CASE("parse rejects malformed text, saying what is wrong", "[endpoint]") {
  struct Case {
    std::string_view text;
    std::string_view says;
  };
  using namespace std::string_view_literals;
  const Case cases[] = {
      {""sv, "empty"},
      {"127.0.0.1"sv, "missing ':port'"},
      {"127.0.0.1:"sv, "missing port number"},
      {":80"sv, "missing address"},
      {"127.0.0.1:http"sv, "not a decimal number"},
      {"127.0.0.1:-1"sv, "not a decimal number"},
      {"127.0.0.1:+80"sv, "not a decimal number"},
      {"127.0.0.1:65536"sv, "out of range"},
      {"127.0.0.1:99999"sv, "out of range"},
      {"127.0.0.1:00000065536"sv, "out of range"},
      {"127.0.0.1:8 0"sv, "space"},
      {" 127.0.0.1:80"sv, "space"},
      {"127.0.0.1:80\n"sv, "control"},
      {"localhost:80"sv, "names are not resolved"},
      {"example.com:443"sv, "names are not resolved"},
      {"256.0.0.1:80"sv, "not an IPv4 address"},
      {"1.2.3:80"sv, "not an IPv4 address"},
      {"1.2.3.4.5:80"sv, "not an IPv4 address"},
      {"01.2.3.4:80"sv, "no leading zeros"},
      {"1..3.4:80"sv, "not an IPv4 address"},
      {"1.2.3.4.:80"sv, "not an IPv4 address"},
      {"0x7f.0.0.1:80"sv, "names are not resolved"},
      {"::1:80"sv, "needs brackets"},
      {"fe80::1:80"sv, "needs brackets"},
      {"[::1]"sv, "missing ':port'"},
      {"[::1]80"sv, "expected ':'"},
      {"[::1:80"sv, "missing ']'"},
      {"[]:80"sv, "no IPv6 address"},
      {"[::g]:80"sv, "not an IPv6 address"},
      {"[1:2:3:4:5:6:7:8:9]:80"sv, "not an IPv6 address"},
      {"[127.0.0.1]:80"sv, "takes no brackets"},
      {"[fe80::1%]:80"sv, "empty scope id"},
      {"[fe80::1%no-such-if0]:80"sv, "no network interface"},
      {"[fe80::1%99999999999]:80"sv, "out of range"},
      {"[::1]:"sv, "missing port number"},
      {"[::1]:65536"sv, "out of range"},
      {"127.0.0.1:80\0"sv, "control"},
      {"caf\xc3\xa9:80"sv, "non-ASCII"},
  };
  STATIC_REQUIRE(sizeof cases / sizeof cases[0] >= 30);
  for (const auto& c : cases) {
    INFO(std::string(c.text));
    auto e = cp::Endpoint::parse(c.text);
    REQUIRE_FALSE(e);
    CHECK(e.error().code() == cp::Errc::invalid_argument);
    CHECK(e.error().condition() == cp::Errc::invalid_argument);
    CHECK(e.error().step() == cp::Step::parse);
    CHECK_THAT(e.error().message(), Contains(std::string(c.says)));
  }
  // Overlong input is refused without echoing all of it.
  const std::string long_text(5000, '1');
  auto e = cp::Endpoint::parse(long_text);
  REQUIRE_FALSE(e);
  CHECK_THAT(e.error().message(), Contains("5000 characters"));
  CHECK(e.error().message().size() < 600);
}

TEST_CASE("messages escape what they quote", "[endpoint]") {
  auto e = cp::Endpoint::parse("\x1b[31mred:80");
  REQUIRE_FALSE(e);
  CHECK(e.error().message().find('\x1b') == std::string::npos);
  CHECK_THAT(e.error().message(), Contains("\\x1b"));
}

TEST_CASE("endpoints compare and hash by every field", "[endpoint]") {
  const auto a = cp::Endpoint::loopback_v4(80);
  CHECK(a == cp::Endpoint::ipv4({127, 0, 0, 1}, 80));
  CHECK(a != a.with_port(81));
  CHECK(a < a.with_port(81));
  CHECK(cp::Endpoint::parse("[fe80::1%1]:80").value() != cp::Endpoint::parse("[fe80::1%2]:80").value());
  CHECK(cp::Endpoint::any_v4(80) != cp::Endpoint::any_v6(80));
  std::unordered_set<cp::Endpoint> set{a, a.with_port(81), cp::Endpoint::loopback_v6(80), a};
  CHECK(set.size() == 3);
  CHECK(std::hash<cp::Endpoint>{}(a) == std::hash<cp::Endpoint>{}(cp::Endpoint::parse("127.0.0.1:80").value()));
  CHECK(std::hash<cp::Endpoint>{}(a) != std::hash<cp::Endpoint>{}(a.with_port(81)));
}

TEST_CASE("endpoints are constexpr values", "[endpoint]") {
  constexpr auto e = cp::Endpoint::loopback_v4(8080);
  STATIC_REQUIRE(e.port() == 8080);
  STATIC_REQUIRE(e.is_v4());
  STATIC_REQUIRE(e.with_port(1).port() == 1);
  STATIC_REQUIRE(cp::Endpoint::any_v6().is_v6());
}

TEST_CASE("sockaddr conversion both ways, IPv4 and IPv6", "[endpoint]") {
  for (const auto& e :
       {cp::Endpoint::parse("192.0.2.7:4321").value(), cp::Endpoint::parse("[2001:db8::1%5]:80").value()}) {
    INFO(e.to_string());
    sockaddr_storage storage;
    const std::size_t length = e.to_sockaddr(storage);
    CHECK(length == (e.is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
    auto back = cp::Endpoint::from_sockaddr(storage, length);
    REQUIRE(back);
    CHECK(*back == e);
  }
  sockaddr_storage storage;
  cp::Endpoint::loopback_v4(80).to_sockaddr(storage);
  sockaddr_in in;
  std::memcpy(&in, &storage, sizeof in);
  CHECK(in.sin_family == AF_INET);
  CHECK(ntohs(in.sin_port) == 80);
  CHECK(ntohl(in.sin_addr.s_addr) == INADDR_LOOPBACK);
}

TEST_CASE("from_sockaddr refuses other families and short lengths", "[endpoint]") {
  sockaddr_storage storage{};
  storage.ss_family = AF_UNIX;
  auto e = cp::Endpoint::from_sockaddr(storage, sizeof storage);
  REQUIRE_FALSE(e);
  // As its comment promises: invalid_argument (bad input), not "this host lacks that family".
  CHECK(e.error() == cp::Errc::invalid_argument);
  CHECK(e.error().step() == cp::Step::parse);
  CHECK_THAT(e.error().message(), Contains("is not IPv4 or IPv6"));
  CHECK_THAT(e.error().message(), !Contains("lacks"));
  cp::Endpoint::loopback_v6(1).to_sockaddr(storage);
  auto short_v6 = cp::Endpoint::from_sockaddr(storage, sizeof(sockaddr_in6) - 1);
  REQUIRE_FALSE(short_v6);
  CHECK(short_v6.error() == cp::Errc::invalid_argument);
  cp::Endpoint::loopback_v4(1).to_sockaddr(storage);
  auto four_bytes = cp::Endpoint::from_sockaddr(storage, 4);  // the outside program's case
  REQUIRE_FALSE(four_bytes);
  CHECK(four_bytes.error() == cp::Errc::invalid_argument);
  CHECK_THAT(four_bytes.error().message(), Contains("needs 16 bytes, and 4 were given"));
}

TEST_CASE("unspecified and loopback addresses are recognised", "[endpoint]") {
  CHECK(cp::Endpoint::any_v4().is_unspecified());
  CHECK(cp::Endpoint::any_v6().is_unspecified());
  CHECK_FALSE(cp::Endpoint::loopback_v4(1).is_unspecified());
  CHECK(cp::Endpoint::parse("127.8.9.10:1").value().is_loopback());
  CHECK_FALSE(cp::Endpoint::parse("[::2]:1").value().is_loopback());
  CHECK(cp::Endpoint::parse("[::1]:1").value().address_string() == "::1");
}

// The classifiers are constexpr: a destination known at compile time can be checked there.
static_assert(cp::Endpoint::any_v4(80).is_unspecified() && cp::Endpoint::any_v6(80).is_unspecified());
static_assert(!cp::Endpoint::ipv4({0, 0, 0, 1}, 80).is_unspecified());
static_assert(!cp::Endpoint::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 80).is_unspecified());
static_assert(cp::Endpoint::loopback_v4(1).is_loopback() && cp::Endpoint::loopback_v6(1).is_loopback());
static_assert(!cp::Endpoint::ipv6({1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 80).is_loopback());
static_assert(cp::Endpoint::ipv4({239, 1, 2, 3}, 80).is_multicast() &&
              !cp::Endpoint::ipv4({240, 0, 0, 1}, 80).is_multicast());
static_assert(cp::Endpoint::ipv6({0xff, 2}, 80).is_multicast() && !cp::Endpoint::loopback_v6(80).is_multicast());
static_assert(cp::Endpoint::ipv4({255, 255, 255, 255}, 80).is_broadcast() &&
              !cp::Endpoint::ipv4({255, 255, 255, 254}, 80).is_broadcast());
static_assert(!cp::Endpoint::ipv6({0xff, 0xff, 0xff, 0xff}, 80).is_broadcast());
