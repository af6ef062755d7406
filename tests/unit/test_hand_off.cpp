// Socket::hand_off and LeaseTicket: a socket given to another owner still tells its rotation how
// it closed; a ticket never told counts as release() (the full rest).
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <utility>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
using Client = cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem>;

Client client(cp::FakeSystem sys, cp::ManualTimer& timer) {
  return Client{{.bind = cp::FixedPortRotation{cp::PortRange{40000, 40001}, {.cooldown = 30s, .use_census = false}},
                 .system = sys,
                 .options = {.timer = &timer}}};
}
}  // namespace

TEST_CASE("hand_off: the new owner's close reaches the rotation, with its kind", "[socket][hand_off]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  Client c = client(sys, timer);
  auto s = c.connect(server);
  REQUIRE(s);
  const auto handle = s->native_handle();
  auto [fd, ticket] = s->hand_off();
  CHECK(fd == handle);
  CHECK_FALSE(s->is_open());       // the socket no longer owns it ...
  CHECK(sys.open_handles() == 1);  // ... and did not close it
  CHECK(ticket.holds_lease());
  CHECK(c.bind_policy().snapshot().in_use == 1);

  REQUIRE_FALSE(sys.close(fd));  // the new owner closes, with a reset, then says so
  ticket.closed(cp::CloseKind::reset);
  CHECK_FALSE(ticket.holds_lease());
  auto snap = c.bind_policy().snapshot();
  CHECK(snap.in_use == 0);
  CHECK(snap.cooling == 0);              // a reset leaves no TIME_WAIT: no rest
  ticket.closed(cp::CloseKind::normal);  // told once; later words are ignored
  CHECK(c.bind_policy().snapshot().cooling == 0);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("hand_off: a normal close rests the port, an untold ticket rests it like release()", "[socket][hand_off]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  Client c = client(sys, timer);
  {
    auto s = c.connect(server);
    REQUIRE(s);
    auto [fd, ticket] = s->hand_off();
    REQUIRE_FALSE(sys.close(fd));
    ticket.closed(cp::CloseKind::normal);
    CHECK(c.bind_policy().snapshot().cooling == 1);
    CHECK(c.bind_policy().snapshot().next_ready_in == std::chrono::milliseconds(30s));
  }
  {
    auto s = c.connect(server);
    REQUIRE(s);
    auto handed = s->hand_off();
    cp::LeaseTicket moved = std::move(handed.lease);  // moving a ticket moves the lease
    CHECK_FALSE(handed.lease.holds_lease());
    CHECK(moved.holds_lease());
    REQUIRE_FALSE(sys.close(handed.handle));
  }  // `moved` goes untold: released
  CHECK(c.bind_policy().snapshot().cooling == 2);
  CHECK(c.bind_policy().snapshot().in_use == 0);
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("hand_off of a socket without a lease gives an empty ticket", "[socket][hand_off]") {
  cp::FakeSystem sys;
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> c{{.system = sys}};
  auto s = c.connect(server);
  REQUIRE(s);
  auto [fd, ticket] = s->hand_off();
  CHECK_FALSE(ticket.holds_lease());
  REQUIRE_FALSE(sys.close(fd));
  CHECK(sys.open_handles() == 0);
}
