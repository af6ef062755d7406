// Names on this host: SystemResolver reads "localhost" from /etc/hosts (no query leaves the
// machine), and the blocking Connector connects to a name whose addresses it was given.
#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <stop_token>
#include <vector>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
// The IPv4 answer from getaddrinfo ("localhost" is in /etc/hosts); IPv6 from a fixed list, so
// that no AAAA query for localhost goes to a name server when /etc/hosts has no ::1 line.
struct LocalhostResolver {
  cp::Endpoint v6;
  cp::SystemResolver system;
  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort& name, cp::Family family,
                                                                std::chrono::milliseconds limit, std::stop_token stop) {
    if (family == cp::Family::ipv6) return std::vector{v6.with_port(name.port())};
    return system.resolve(name, family, limit, stop);
  }
};
}  // namespace

TEST_CASE("names: SystemResolver finds localhost's IPv4 address, with the name's port", "[names][integration]") {
  auto found = cp::SystemResolver{}.resolve(*cp::HostPort::parse("localhost:7000"), cp::Family::ipv4, 5s, {});
  REQUIRE(found);
  CHECK(std::ranges::find(*found, cp::Endpoint::loopback_v4(7000)) != found->end());
  // A numeric name is its own answer, in its family only.
  const auto numeric = *cp::HostPort::parse("127.0.0.1:9");
  CHECK(cp::SystemResolver{}.resolve(numeric, cp::Family::ipv4, 1s, {}).value() ==
        std::vector{numeric.numeric().value()});
  CHECK(cp::SystemResolver{}.resolve(numeric, cp::Family::ipv6, 1s, {}).value().empty());
}

TEST_CASE("names: IPv6 refused, then IPv4 connects, through the blocking driver on loopback", "[names][integration]") {
  cp::LoopbackServer server;  // IPv4 only: ::1 at its port refuses (or is unreachable)
  const auto fds_before = test_support::open_fd_count();
  {
    cp::Connector<cp::EphemeralBind> client{cp::EphemeralBind{}};
    auto s = client.connect(*cp::HostPort::from("localhost", server.endpoint().port()),
                            LocalhostResolver{cp::Endpoint::loopback_v6(0), {}});
    REQUIRE(s);
    CHECK(s->remote_endpoint().value() == server.endpoint());
  }
  REQUIRE(server.wait_closed(1));  // the server's end of the connection, closed on its own thread
  CHECK(test_support::open_fd_count() == fds_before);
}
