// The real system layer on loopback: what the Connector will build on.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <sys/socket.h>
#include "fd_count.hpp"
import connpolicy;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using test_support::open_fd_count;

TEST_CASE("non-blocking connect to a closed loopback port reports connection_refused", "[system][loopback]") {
  const auto before = open_fd_count();
  {
    cp::NativeSystem sys;
    // A port nobody listens on: reserve it (bound, not listening), so nothing else can take it.
    auto closed_port = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));
    REQUIRE(closed_port);
    cp::Socket s(sys.open_socket(cp::Family::ipv4, true).value());
    auto ec = sys.connect(s.native_handle(), closed_port->endpoint());
    if (cp::is_in_progress(ec)) {
      auto ready = sys.wait_writable(s.native_handle(), 2s);
      REQUIRE(ready);
      CHECK(*ready);
      ec = sys.pending_error(s.native_handle());
    }
    CHECK(ec == cp::Errc::connection_refused);
  }
  CHECK(open_fd_count() == before);
}

TEST_CASE("connect to a listening loopback server succeeds and both endpoints are known", "[system][loopback]") {
  cp::NativeSystem sys;
  cp::Socket server(sys.open_socket(cp::Family::ipv4, false).value());
  REQUIRE_FALSE(sys.bind(server.native_handle(), cp::Endpoint::loopback_v4(0)));
  REQUIRE(::listen(server.native_handle(), 4) == 0);
  const auto address = server.local_endpoint().value();

  cp::Socket client(sys.open_socket(cp::Family::ipv4, true).value());
  auto ec = sys.connect(client.native_handle(), address);
  if (cp::is_in_progress(ec)) {
    REQUIRE(sys.wait_writable(client.native_handle(), 2s).value());
    ec = sys.pending_error(client.native_handle());
  }
  REQUIRE_FALSE(ec);
  CHECK(client.remote_endpoint().value() == address);
  CHECK(client.local_endpoint().value().port() != 0);
}

TEST_CASE("wait_writable times out on a socket that never becomes writable", "[system]") {
  cp::NativeSystem sys;
  // A listening socket is never writable: a quick, deterministic timeout.
  cp::Socket s(sys.open_socket(cp::Family::ipv4, true).value());
  REQUIRE_FALSE(sys.bind(s.native_handle(), cp::Endpoint::loopback_v4(0)));
  REQUIRE(::listen(s.native_handle(), 1) == 0);
  auto ready = sys.wait_writable(s.native_handle(), 1ms);
  REQUIRE(ready);
  CHECK_FALSE(*ready);
}

TEST_CASE("socket options reach the kernel", "[system]") {
  cp::NativeSystem sys;
  cp::Socket s(sys.open_socket(cp::Family::ipv4, false).value());
  CHECK_FALSE(sys.set_option(s.native_handle(), cp::SocketOption::reuse_address, 1));
  int value = 0;
  socklen_t length = sizeof value;
  REQUIRE(::getsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEADDR, &value, &length) == 0);
  CHECK(value == 1);
  // Never SO_REUSEPORT: a fresh socket has it off, and no option of ours turns it on.
  REQUIRE(::getsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &value, &length) == 0);
  CHECK(value == 0);
  CHECK_FALSE(sys.set_option(s.native_handle(), cp::SocketOption::linger_reset, 1));
  CHECK_FALSE(sys.set_option(s.native_handle(), cp::SocketOption::no_delay, 1));
  CHECK_FALSE(sys.set_nonblocking(s.native_handle(), true));
}

TEST_CASE("IP_BIND_ADDRESS_NO_PORT leaves the port to connect()", "[system][loopback]") {
  cp::NativeSystem sys;
  cp::Socket s(sys.open_socket(cp::Family::ipv4, false).value());
  if (auto ec = sys.set_option(s.native_handle(), cp::SocketOption::bind_address_no_port, 1)) {
    WARN("IP_BIND_ADDRESS_NO_PORT unavailable here: " << ec.message());
    return;
  }
  REQUIRE_FALSE(sys.bind(s.native_handle(), cp::Endpoint::loopback_v4(0)));
  CHECK(s.local_endpoint().value().port() == 0);
}

TEST_CASE("system calls on a closed descriptor report EBADF", "[system]") {
  cp::NativeSystem sys;
  const auto h = sys.open_socket(cp::Family::ipv4, false).value();
  REQUIRE_FALSE(sys.close(h));
  CHECK(sys.bind(h, cp::Endpoint::loopback_v4(0)) == std::errc::bad_file_descriptor);
  CHECK(sys.local_endpoint(h).error() == std::errc::bad_file_descriptor);
}
