// find_free_port (the seed's helper) and PortReservation (its race-free form).
#include <catch2/catch.hpp>
#include <optional>
#include <algorithm>
#include <cerrno>
#include <utility>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using test_support::open_fd_count;

namespace {
// Binds `local` with a fresh real socket; returns the error code (empty = bound) and closes.
std::error_code try_bind(const cp::Endpoint& local) {
  cp::NativeSystem sys;
  auto h = sys.open_socket(local.family(), false);
  REQUIRE(h);
  cp::Socket s(*h);
  return sys.bind(s.native_handle(), local);
}
}  // namespace

TEST_CASE("find_free_port returns a port that can be bound, and leaks nothing", "[ports]") {
  const auto before = open_fd_count();
  auto port = cp::find_free_port(cp::Endpoint::loopback_v4(0));
  REQUIRE(port);
  CHECK(*port != 0);
  CHECK(open_fd_count() == before);
  CHECK_FALSE(try_bind(cp::Endpoint::loopback_v4(*port)));
}

TEST_CASE("a reservation makes a second bind of its port fail with local_port_busy until released", "[ports][seed]") {
  const auto before = open_fd_count();
  {
    auto r = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));
    REQUIRE(r);
    CHECK(r->holds());
    CHECK(r->port() != 0);
#ifndef _WIN32  // Wine's GetProcessHandleCount is a stub (always 0): no handle counts there
    CHECK(open_fd_count() == before + 1);
#endif

    CHECK(try_bind(cp::Endpoint::loopback_v4(r->port())) == cp::Errc::local_port_busy);
    auto second = cp::PortReservation::reserve(r->endpoint());
    REQUIRE_FALSE(second);
    CHECK(second.error().condition() == cp::Errc::local_port_busy);
    CHECK(second.error().step() == cp::Step::bind);
    CHECK(second.error().local_endpoint() == r->endpoint());

    r->release();
    CHECK_FALSE(r->holds());
    CHECK(open_fd_count() == before);
    CHECK_FALSE(try_bind(cp::Endpoint::loopback_v4(r->port())));
  }
  CHECK(open_fd_count() == before);
}

TEST_CASE("a reservation hands its bound socket over", "[ports]") {
  const auto before = open_fd_count();
  auto r = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));
  REQUIRE(r);
  const auto endpoint = r->endpoint();
  cp::Socket s = r->take_socket();
  CHECK_FALSE(r->holds());
  REQUIRE(s.is_open());
  CHECK(s.local_endpoint().value() == endpoint);
  CHECK(try_bind(endpoint) == cp::Errc::local_port_busy);  // still held, now by `s`
  s.close();
  CHECK(open_fd_count() == before);
}

TEST_CASE("reservations move with their hold", "[ports]") {
  const auto before = open_fd_count();
  auto r = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));
  REQUIRE(r);
  cp::PortReservation moved = std::move(*r);
  CHECK(moved.holds());
  CHECK(try_bind(moved.endpoint()) == cp::Errc::local_port_busy);
  moved.release();
  CHECK(open_fd_count() == before + 0);
}

TEST_CASE("find_free_port closes its socket when bind or getsockname fails", "[ports][fake]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::bind, std::errc::address_in_use);
  auto port = cp::find_free_port(cp::Endpoint::any_v4(), sys);
  REQUIRE_FALSE(port);
  // Port 0 and EADDRINUSE: no ephemeral port was left.
  CHECK(port.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK(sys.open_handles() == 0);

  sys.fail(cp::Call::local_endpoint, std::errc::no_buffer_space);
  port = cp::find_free_port(cp::Endpoint::any_v4(), sys);
  REQUIRE_FALSE(port);
  CHECK(port.error().condition() == cp::Errc::out_of_resources);
  CHECK(sys.open_handles() == 0);

  sys.fail(cp::Call::open_socket, std::errc::too_many_files_open);
  port = cp::find_free_port(cp::Endpoint::any_v4(), sys);
  REQUIRE_FALSE(port);
  CHECK(port.error().step() == cp::Step::socket);
  CHECK(port.error().condition() == cp::Errc::too_many_open_sockets);

  CHECK(sys.bad_closes() == 0);
  CHECK(sys.opened() == sys.closed());
}

TEST_CASE("find_free_port with the fake: bind port 0, read it, close", "[ports][fake]") {
  cp::FakeSystem sys;
  auto port = cp::find_free_port(cp::Endpoint::loopback_v4(1234), sys);  // any given port is ignored
  REQUIRE(port);
  CHECK(*port == cp::FakeSystem::first_ephemeral_port);
  auto calls = sys.calls();
#ifdef _WIN32  // first SO_EXCLUSIVEADDRUSE, so no SO_REUSEADDR socket can share the port
  REQUIRE(calls.size() == 5);
  CHECK(calls[1].call == cp::Call::set_option);
  calls.erase(calls.begin() + 1);
#endif
  REQUIRE(calls.size() == 4);
  CHECK(calls[0].call == cp::Call::open_socket);
  CHECK(calls[1].endpoint == cp::Endpoint::loopback_v4(0));
  CHECK(calls[2].call == cp::Call::local_endpoint);
  CHECK(calls[3].call == cp::Call::close);
}

TEST_CASE("a reservation over the fake holds one handle and closes it once", "[ports][fake]") {
  cp::FakeSystem sys;
  {
    auto r = cp::BasicPortReservation<cp::FakeSystem>::reserve(cp::Endpoint::loopback_v4(0), sys);
    REQUIRE(r);
    CHECK(r->port() == cp::FakeSystem::first_ephemeral_port);
    CHECK(sys.open_handles() == 1);
    sys.fail(cp::Call::bind, std::errc::address_in_use);
    auto second = cp::BasicPortReservation<cp::FakeSystem>::reserve(r->endpoint(), sys);
    REQUIRE_FALSE(second);
    CHECK(second.error().condition() == cp::Errc::local_port_busy);
    CHECK(sys.open_handles() == 1);
  }
  CHECK(sys.open_handles() == 0);
  CHECK(sys.bad_closes() == 0);
}

TEST_CASE("find_free_port_range finds consecutive bindable ports and skips taken ones", "[ports]") {
  const auto fds = open_fd_count();
  auto range = cp::find_free_port_range(5);
  REQUIRE(range);
  CHECK(range->size() == 5);
  CHECK(range->first() >= 20000);
  CHECK(range->last() <= 29999);
  for (auto p = range->first(); p <= range->last(); ++p) CHECK_FALSE(try_bind(cp::Endpoint::any_v4(p)));
  CHECK(open_fd_count() == fds);

  // With the fake, the first probe fails (busy) and the rest succeed: the range found starts
  // after the busy port, whatever the random start, and every probe socket is closed.
  for (int round = 0; round < 20; ++round) {
    cp::FakeSystem sys;
    sys.fail(cp::Call::bind, std::errc::address_in_use);
    auto r = cp::find_free_port_range(3, cp::PortRange{100, 106}, cp::Endpoint::any_v4(), sys);
    REQUIRE(r);
    CHECK(r->size() == 3);
    const auto calls = sys.calls();
    const auto busy =
        std::find_if(calls.begin(), calls.end(), [](const cp::CallRecord& c) { return c.call == cp::Call::bind; });
    REQUIRE(busy != calls.end());
    CHECK_FALSE(r->contains(busy->endpoint->port()));
    CHECK(sys.open_handles() == 0);
  }
  CHECK_FALSE(cp::find_free_port_range(0));
  CHECK(cp::find_free_port_range(11, cp::PortRange{1, 10}).error().code() == cp::Errc::invalid_argument);
  cp::FakeSystem full;
  full.fail(cp::Call::bind, std::errc::address_in_use, 1000);
  auto none = cp::find_free_port_range(2, cp::PortRange{100, 109}, cp::Endpoint::any_v4(), full);
  REQUIRE_FALSE(none);
  CHECK(none.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK(full.count(cp::Call::bind) <= 10 + 2);  // bounded probing
  CHECK(full.open_handles() == 0);
}
