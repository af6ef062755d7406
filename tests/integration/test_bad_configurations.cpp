// Bad configurations and special addresses against the real kernel, on loopback: what Linux does
// with each, and that the library refuses or blames as docs/security.md says.
#include <catch2/catch.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;
#include "counting_system.hpp"  // after the import: they use connpolicy's names
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test_support::open_fd_count;

namespace {
cp::Endpoint mapped(std::array<std::uint8_t, 4> v4, std::uint16_t port) {
  return cp::Endpoint::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3]}, port);
}
}  // namespace

TEST_CASE("bad config (loopback): [::ffff:0.0.0.0] would reach this host, it is refused, no socket made",
          "[integration][config]") {
  cp::LoopbackServer server;
  const auto fds = open_fd_count();
  cp::Connector<cp::NoBind> client;
  auto s = client.connect(mapped({0, 0, 0, 0}, server.endpoint().port()));
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::invalid_argument);
  CHECK_THAT(s.error().message(), Contains("unspecified"));
  CHECK(open_fd_count() == fds);
  // This host by its mapped loopback name is a destination like any other.
  auto ok = client.connect(mapped({127, 0, 0, 1}, server.endpoint().port()));
  REQUIRE(ok);
  CHECK(ok->remote_endpoint().value().unmapped() == server.endpoint());
}

TEST_CASE("bad config (loopback): a source address not on this host fails one bind and cools no port",
          "[integration][config]") {
  cp::LoopbackServer server;
  const auto fds = open_fd_count();
  const auto first = test_support::free_port_block(10);
  {
    cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy, test_support::CountingSystem>
        client{cp::FixedPortRotation::make(first, first + 9, {.source = cp::Endpoint::ipv4({192, 0, 2, 1}, 0)}).value(),
               cp::ExponentialRetry{{.initial = 1s, .max_attempts = 3}}};
    const auto start = std::chrono::steady_clock::now();
    auto s = client.connect(server.endpoint());
    REQUIRE_FALSE(s);
    CHECK(s.error().code() == std::errc::address_not_available);  // what Linux says at bind
    CHECK(s.error() == cp::Errc::address_not_available);
    CHECK(s.error().step() == cp::Step::bind);
    CHECK(*client.system().binds == 1);
    CHECK(std::chrono::steady_clock::now() - start < 1s);  // no retry wait: it cannot help
    CHECK_THAT(s.error().message(), Contains("192.0.2.1"));
    CHECK(client.bind_policy().snapshot().cooling == 0);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("bad config (loopback): KernelPortRange outside net.ipv4.ip_local_port_range is refused, "
          "partly inside uses the overlap",
          "[integration][config]") {
  const auto system = cp::ephemeral_port_range();
  REQUIRE(system);
  const auto [low, high] = test_support::ephemeral_range();
  CHECK(system->first() == low);
  CHECK(system->last() == high);
  // Counted before the server: its side of an accepted connection closes on its own thread, so
  // only with the server gone is the count settled.
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto with_server = open_fd_count();
    if (low > 1030) {
      cp::Connector<cp::KernelPortRange> below{cp::KernelPortRange{cp::PortRange::make(low - 10, low - 1).value()}};
      auto s = below.connect(server.endpoint());
      REQUIRE_FALSE(s);
      CHECK(s.error() == cp::Errc::invalid_argument);
      CHECK_THAT(s.error().message(), Contains("lies outside the system's ephemeral range"));
      CHECK(open_fd_count() == with_server);  // refused before any socket
    }
    if (high < 65535) {
      // The upper end of the system range and beyond: the kernel takes only the overlap.
      const int first = std::max(low, high - 3);
      cp::Connector<cp::KernelPortRange> across{cp::KernelPortRange{cp::PortRange::make(first, 65535).value()}};
      REQUIRE(across.bind_policy().usable_range().value() == cp::PortRange::make(first, high).value());
      auto s = across.connect(server.endpoint());
      if (!s && s.error().step() == cp::Step::set_option) {
        WARN("IP_LOCAL_PORT_RANGE is not available on this kernel: " << s.error().message());
        return;
      }
      if (!s && s.error() == cp::Errc::local_ports_exhausted) {
        WARN("the last ports of the system range are all in use here: " << s.error().message());
        return;
      }
      REQUIRE(s);
      const auto port = s->local_endpoint().value().port();
      CHECK(port >= first);
      CHECK(port <= high);
    }
  }
  CHECK(open_fd_count() == fds);
}
