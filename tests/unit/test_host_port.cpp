// HostPort::parse: names, numeric addresses, and what is wrong with bad text.
#include <catch2/catch.hpp>
#include <string>
import connpolicy;

namespace cp = connpolicy;

namespace {
std::string refusal(std::string_view text) {
  auto h = cp::HostPort::parse(text);
  REQUIRE_FALSE(h);
  CHECK(h.error() == cp::Errc::invalid_argument);
  CHECK(h.error().step() == cp::Step::parse);
  return h.error().message();
}
bool says(const std::string& message, std::string_view what) { return message.find(what) != std::string::npos; }
}  // namespace

TEST_CASE("host_port: names are kept as text, numeric addresses are read at once", "[host_port]") {
  auto name = cp::HostPort::parse("login.example.com:7000");
  REQUIRE(name);
  CHECK(name->host() == "login.example.com");
  CHECK(name->port() == 7000);
  CHECK_FALSE(name->numeric());
  CHECK(name->to_string() == "login.example.com:7000");

  auto v4 = cp::HostPort::parse("127.0.0.1:7000");
  REQUIRE(v4);
  REQUIRE(v4->numeric());
  CHECK(*v4->numeric() == cp::Endpoint::loopback_v4(7000));
  CHECK(v4->host() == "127.0.0.1");

  auto v6 = cp::HostPort::parse("[::1]:7000");
  REQUIRE(v6);
  REQUIRE(v6->numeric());
  CHECK(*v6->numeric() == cp::Endpoint::loopback_v6(7000));
  CHECK(v6->host() == "::1");
  CHECK(v6->to_string() == "[::1]:7000");

  for (const char* ok : {"localhost:1", "a:65535", "my_db:5432", "x-1.y-2.z:80", "example.com.:443",
                         "xn--bcher-kva.example:80", "123abc.net:80"}) {
    INFO(ok);
    auto h = cp::HostPort::parse(ok);
    REQUIRE(h);
    CHECK(cp::HostPort::parse(h->to_string()) == h);
  }
  CHECK(cp::HostPort::from("::1", 80) == cp::HostPort::parse("[::1]:80"));
  CHECK(cp::HostPort::from("db.internal", 5432)->to_string() == "db.internal:5432");
  CHECK(cp::HostPort(cp::Endpoint::loopback_v4(9)) == cp::HostPort::parse("127.0.0.1:9"));
}

TEST_CASE("host_port: bad text gets one clear reason", "[host_port]") {
  CHECK(says(refusal(""), "it is empty"));
  CHECK(says(refusal("login.example.com"), "missing ':port'"));
  CHECK(says(refusal("login.example.com:"), "missing port number"));
  CHECK(says(refusal("login.example.com:70000"), "out of range"));
  CHECK(says(refusal("login.example.com:7x"), "is not a decimal number"));
  CHECK(says(refusal(":7000"), "missing host"));
  CHECK(says(refusal("::1:7000"), "needs brackets"));
  CHECK(says(refusal("a..b:1"), "empty label"));
  CHECK(says(refusal(".a:1"), "empty label"));
  CHECK(says(refusal("-a.b:1"), "starts or ends with '-'"));
  CHECK(says(refusal("a-.b:1"), "starts or ends with '-'"));
  CHECK(says(refusal("a/b:1"), "\"/\" cannot be part of a host name"));
  CHECK(says(refusal("a b:1"), "a space"));
  CHECK(says(refusal("caf\xc3\xa9.fr:1"), "non-ASCII"));
  CHECK(says(refusal(std::string(64, 'a') + ".com:1"), "longer than 63"));
  std::string long_name;
  for (int i = 0; i < 51; ++i) long_name += "abcd.";  // 258 characters with "com"
  CHECK(says(refusal(long_name + "com:1"), "more than DNS allows"));
  CHECK(says(refusal(std::string(400, 'a')), "more than any host:port"));
  // A numeric address is read by Endpoint's rules, and refused in its words.
  CHECK(says(refusal("256.1.1.1:80"), "is not an IPv4 address"));
  CHECK(says(refusal("[::1]"), "missing ':port'"));
  CHECK(says(refusal("[nonsense]:1"), "is not an IPv6 address"));
  // A name is never a number in disguise: glibc's getaddrinfo would read these as 127.0.0.1
  // without asking a name server, bypassing a check of numeric().
  for (const char* disguised : {"0x7f.0.0.1:7105", "0x7f000001:7105", "0X7F.1:7105", "0x7f.0x0.0x0.0x1:80", "0x:1"}) {
    INFO(disguised);
    CHECK(says(refusal(disguised), "reads as a number"));
  }
  CHECK(cp::HostPort::parse("017700000001x:1"));  // a letter at the end: a name, of an odd shape
  CHECK(says(refusal("example.123:80"), "the last label \"123\" is all digits"));
  CHECK(says(refusal("a.b.0x1.2:80"), "the last label \"2\" is all digits"));  // five parts: not inet_aton's
  CHECK(cp::HostPort::parse("0x7f.example.com:80"));  // a number-like label inside a name is fine
  CHECK(cp::HostPort::parse("123.example:80"));
  // Port 0 is not a destination, named or numeric.
  CHECK(says(refusal("localhost:0"), "port 0 is not a destination"));
  CHECK(says(refusal("127.0.0.1:0"), "port 0 is not a destination"));
  CHECK(says(refusal("[::1]:0"), "port 0 is not a destination"));
  CHECK_FALSE(cp::HostPort::from("db.internal", 0));
  // Messages stay one line, whatever they were given.
  CHECK_FALSE(says(refusal("a\nb:1"), "\n"));
}
