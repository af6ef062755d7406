// FakeSystem: scripts play back in order, calls are recorded, handles are counted.
#include <catch2/catch.hpp>
#include <optional>
#include <cerrno>
#include <chrono>
#include <system_error>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

TEST_CASE("fake: bind fails EADDRINUSE twice, then succeeds", "[fake]") {
  cp::FakeSystem sys;
  sys.script(cp::Call::bind, {cp::make_system_error(EADDRINUSE), cp::make_system_error(EADDRINUSE), {}});
  auto h = sys.open_socket(cp::Family::ipv4, true);
  REQUIRE(h);
  CHECK(sys.bind(*h, cp::Endpoint::any_v4(40000)) == cp::Errc::local_port_busy);
  CHECK(sys.bind(*h, cp::Endpoint::any_v4(40001)) == cp::Errc::local_port_busy);
  CHECK_FALSE(sys.bind(*h, cp::Endpoint::any_v4(40002)));
  CHECK(sys.local_endpoint(*h).value() == cp::Endpoint::any_v4(40002));
  CHECK(sys.count(cp::Call::bind) == 3);
  const auto calls = sys.calls();
  REQUIRE(calls.size() == 5);  // open, 3 binds, local_endpoint
  CHECK(calls[1].endpoint == cp::Endpoint::any_v4(40000));
  CHECK(calls[1].result == cp::Errc::local_port_busy);
  CHECK_FALSE(calls[3].result);
  CHECK(sys.close(*h) == std::error_code{});
}

TEST_CASE("fake: copies share one state", "[fake]") {
  cp::FakeSystem test_side;
  cp::FakeSystem code_side = test_side;
  test_side.fail(cp::Call::open_socket, std::errc::too_many_files_open);
  auto h = code_side.open_socket(cp::Family::ipv4, false);
  REQUIRE_FALSE(h);
  CHECK(h.error() == cp::Errc::too_many_open_sockets);
  CHECK(test_side.count(cp::Call::open_socket) == 1);
  CHECK(test_side.opened() == 0);
}

TEST_CASE("fake: counts handles and double closes", "[fake]") {
  cp::FakeSystem sys;
  auto a = sys.open_socket(cp::Family::ipv4, false).value();
  auto b = sys.open_socket(cp::Family::ipv6, false).value();
  CHECK(a == cp::FakeSystem::first_handle);
  CHECK(b == a + 1);
  CHECK(sys.open_handles() == 2);
  CHECK_FALSE(sys.close(a));
  CHECK(sys.close(a) == std::errc::bad_file_descriptor);
  CHECK(sys.bad_closes() == 1);
  CHECK(sys.open_handles() == 1);
  // A scripted close error still releases the handle, as close(2) does.
  sys.fail(cp::Call::close, std::errc::interrupted);
  CHECK(sys.close(b) == std::errc::interrupted);
  CHECK(sys.open_handles() == 0);
  CHECK(sys.closed() == 2);
}

TEST_CASE("fake: calls on a closed or unknown handle fail with EBADF", "[fake]") {
  cp::FakeSystem sys;
  auto h = sys.open_socket(cp::Family::ipv4, false).value();
  sys.close(h);
  CHECK(sys.bind(h, cp::Endpoint::any_v4()) == std::errc::bad_file_descriptor);
  CHECK(sys.connect(h, cp::Endpoint::loopback_v4(1)) == std::errc::bad_file_descriptor);
  CHECK(sys.set_option(h, cp::SocketOption::reuse_address, 1) == std::errc::bad_file_descriptor);
  CHECK(sys.local_endpoint(999).error() == std::errc::bad_file_descriptor);
}

TEST_CASE("fake: bind port 0 gets an ephemeral port, unless IP_BIND_ADDRESS_NO_PORT defers it", "[fake]") {
  cp::FakeSystem sys;
  auto a = sys.open_socket(cp::Family::ipv4, true).value();
  REQUIRE_FALSE(sys.bind(a, cp::Endpoint::loopback_v4(0)));
  CHECK(sys.local_endpoint(a).value() == cp::Endpoint::loopback_v4(cp::FakeSystem::first_ephemeral_port));

  auto b = sys.open_socket(cp::Family::ipv4, true).value();
  REQUIRE_FALSE(sys.set_option(b, cp::SocketOption::bind_address_no_port, 1));
  CHECK(sys.option_value(b, cp::SocketOption::bind_address_no_port) == 1);
  REQUIRE_FALSE(sys.bind(b, cp::Endpoint::loopback_v4(0)));
  CHECK(sys.local_endpoint(b).value().port() == 0);
  REQUIRE_FALSE(sys.connect(b, cp::Endpoint::loopback_v4(7000)));
  CHECK(sys.local_endpoint(b).value().port() == cp::FakeSystem::first_ephemeral_port + 1);
  CHECK(sys.remote_endpoint(b).value() == cp::Endpoint::loopback_v4(7000));
  sys.close(a);
  sys.close(b);
}

TEST_CASE("fake: a pending connect is decided by wait_writable and pending_error", "[fake]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::connect, std::errc::operation_in_progress, 2);
  sys.time_out();
  sys.fail(cp::Call::pending_error, std::errc::connection_refused);
  auto h = sys.open_socket(cp::Family::ipv4, true).value();
  CHECK(cp::is_in_progress(sys.connect(h, cp::Endpoint::loopback_v4(1))));
  CHECK(sys.wait_writable(h, 10ms) == false);  // timed out
  CHECK(sys.wait_writable(h, 10ms) == true);   // plain: ready
  CHECK(sys.pending_error(h) == cp::Errc::connection_refused);
  CHECK(cp::is_in_progress(sys.connect(h, cp::Endpoint::loopback_v4(1))));
  CHECK_FALSE(sys.pending_error(h));  // plain: connected
  sys.fail(cp::Call::wait_writable, std::errc::interrupted);
  CHECK(sys.wait_writable(h, 10ms).error() == std::errc::interrupted);
  sys.close(h);
}

TEST_CASE("fake: replays Winsock codes", "[fake][windows]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::connect, cp::make_winsock_error(cp::winsock::eaddrinuse));
  auto h = sys.open_socket(cp::Family::ipv4, true).value();
  REQUIRE_FALSE(sys.bind(h, cp::Endpoint::any_v4(40000)));
  const auto ec = sys.connect(h, cp::Endpoint::loopback_v4(7000));
  CHECK(ec == cp::Errc::local_port_busy);
  CHECK(ec.value() == 10048);
  CHECK(cp::is_in_progress(cp::make_winsock_error(cp::winsock::ewouldblock)));
  sys.close(h);
}

TEST_CASE("fake: records options, non-blocking mode and names calls", "[fake]") {
  cp::FakeSystem sys;
  auto h = sys.open_socket(cp::Family::ipv6, true).value();
  REQUIRE_FALSE(sys.set_option(h, cp::SocketOption::reuse_address, 1));
  REQUIRE_FALSE(sys.set_nonblocking(h, false));
  const auto calls = sys.calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].value == 1);  // opened non-blocking
  CHECK(calls[1].option == cp::SocketOption::reuse_address);
  CHECK(calls[2].call == cp::Call::set_nonblocking);
  CHECK(calls[2].value == 0);
  CHECK(cp::to_string(cp::Call::pending_error) == "pending_error");
  CHECK(cp::to_string(cp::SocketOption::reuse_address) == "SO_REUSEADDR");
  CHECK_FALSE(sys.option_value(h, cp::SocketOption::linger_reset).has_value());
  sys.close(h);
}
