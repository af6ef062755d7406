// Happy Eyeballs on loopback, through the blocking driver and real sockets: a name whose IPv6
// address black-holes (a listener whose accept queue is full drops SYNs) and whose IPv4 address
// listens connects over IPv4 after the attempt delay, not the connect timeout.
#include <catch2/catch.hpp>
#include <chrono>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;
#include "black_hole.hpp"
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
// A name with these addresses, ports and all (a test's own /etc/hosts line).
struct ListResolver {
  std::vector<cp::Endpoint> v6, v4;
  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort&, cp::Family family,
                                                                std::chrono::milliseconds, std::stop_token) {
    return family == cp::Family::ipv6 ? v6 : v4;
  }
};
const cp::HostPort dual = *cp::HostPort::parse("dual.test:7000");
cp::Endpoint refusing(cp::Family family) {  // a loopback port nobody listens on
  cp::NativeSystem sys;
  cp::Socket s(sys.open_socket(family, false).value());
  REQUIRE_FALSE(sys.bind(s.native_handle(),
                         family == cp::Family::ipv4 ? cp::Endpoint::loopback_v4(0) : cp::Endpoint::loopback_v6(0)));
  return s.local_endpoint().value();  // bound, never listening: refused, then closed
}
}  // namespace

TEST_CASE("race on loopback: IPv6 black-holed, IPv4 listening: connected over IPv4 after the attempt delay",
          "[race][integration]") {
  auto hole = test_support::black_hole(cp::Family::ipv6);
  if (hole.fillers.empty()) {
    WARN("no IPv6 loopback here, or its accept queue could not be filled");
    return;
  }
  cp::LoopbackServer server;
  const auto fds_before = test_support::open_fd_count();
  {
    cp::Connector<cp::EphemeralBind> client{{.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 5s}}};
    const auto start = Clock::now();
    auto s = client.connect(dual, ListResolver{{hole.endpoint}, {server.endpoint()}});
    const auto took = Clock::now() - start;
    REQUIRE(s);
    CHECK(s->remote_endpoint().value() == server.endpoint());
    CHECK(took >= 250ms);  // IPv4 waited its turn: IPv6 had not failed
    CHECK(took < 5s);      // and did not wait for IPv6's timeout, as one after the other would
  }
  REQUIRE(server.wait_closed(1));
  CHECK(test_support::open_fd_count() == fds_before);  // the IPv6 attempt's socket too
}

TEST_CASE("race on loopback: both refused is one error naming both addresses", "[race][integration]") {
  const cp::Endpoint six = refusing(cp::Family::ipv6), four = refusing(cp::Family::ipv4);
  const auto fds_before = test_support::open_fd_count();
  cp::Connector<cp::EphemeralBind> client{cp::EphemeralBind{}};
  auto s = client.connect(dual, ListResolver{{six}, {four}});
  REQUIRE_FALSE(s);
  const std::string m = s.error().message();
  CHECK_THAT(m, Catch::Matchers::Contains("every address failed: " + six.to_string() + " connect: "));
  CHECK_THAT(m, Catch::Matchers::Contains("; " + four.to_string() + " connect: "));
  CHECK(s.error().attempts() == 2);
  CHECK(test_support::open_fd_count() == fds_before);
}

TEST_CASE("race on loopback: a stop mid-race closes every attempt", "[race][integration]") {
  auto hole6 = test_support::black_hole(cp::Family::ipv6);
  auto hole4 = test_support::black_hole(cp::Family::ipv4);
  if (hole6.fillers.empty() || hole4.fillers.empty()) {
    WARN("no black hole on both loopbacks here");
    return;
  }
  // Outside the kernel's ephemeral range, so no other test's connection holds one of them.
  const auto first = test_support::free_port_block(10);
  cp::FixedPortRotation rotation{cp::PortRange::make(first, first + 9).value(), {.use_census = false}};
  const auto fds_before = test_support::open_fd_count();
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(400ms);  // both attempts are in flight by then
    stop.request_stop();
  });
  cp::Connector<cp::FixedPortRotation> client{{.bind = rotation, .options = {.connect_timeout = 5s}}};
  auto s = client.connect(dual, ListResolver{{hole6.endpoint}, {hole4.endpoint}}, stop.get_token());
  stopper.join();
  REQUIRE_FALSE(s);
  CHECK(s.error() == cp::Errc::cancelled);
  CHECK(test_support::open_fd_count() == fds_before);
  const auto snap = rotation.snapshot();
  CHECK(snap.in_use == 0);   // both ports came back
  CHECK(snap.cooling == 0);  // as never used
}
