// Socket: move-only ownership, closed exactly once, never leaked, close-on-exec.
#include <catch2/catch.hpp>
#include <optional>
#include <cerrno>
#include <type_traits>
#include <utility>
#include <fcntl.h>
#include <unistd.h>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using test_support::open_fd_count;

namespace {
cp::Socket open_real_socket() {
  auto h = cp::NativeSystem{}.open_socket(cp::Family::ipv4, false);
  REQUIRE(h);
  return cp::Socket(*h);
}
}  // namespace

TEST_CASE("Socket is small and move-only", "[socket]") {
  // A handle and an optional port lease (a shared_ptr); the real system adds nothing.
  STATIC_REQUIRE(sizeof(cp::Socket) <= 3 * sizeof(void*));
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<cp::Socket>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<cp::Socket>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<cp::Socket>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<cp::Socket>);
}

TEST_CASE("Socket closes its descriptor when it goes out of scope", "[socket]") {
  const auto before = open_fd_count();
  {
    cp::Socket s = open_real_socket();
    CHECK(s.is_open());
    CHECK(open_fd_count() == before + 1);
  }
  CHECK(open_fd_count() == before);
}

TEST_CASE("moving a Socket moves the descriptor, closing the target's old one", "[socket]") {
  const auto before = open_fd_count();
  {
    cp::Socket a = open_real_socket();
    cp::Socket b = open_real_socket();
    const auto fd_a = a.native_handle();
    CHECK(open_fd_count() == before + 2);
    b = std::move(a);  // b's old descriptor is closed now
    CHECK(open_fd_count() == before + 1);
    CHECK(b.native_handle() == fd_a);
    CHECK_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    cp::Socket c(std::move(b));
    CHECK(c.native_handle() == fd_a);
    CHECK_FALSE(b);
  }
  CHECK(open_fd_count() == before);
}

TEST_CASE("release hands the descriptor over, close is idempotent", "[socket]") {
  const auto before = open_fd_count();
  cp::Socket s = open_real_socket();
  const int fd = s.release();
  CHECK_FALSE(s.is_open());
  CHECK_FALSE(s.close());  // nothing to close, no error
  CHECK(open_fd_count() == before + 1);
  CHECK(::close(fd) == 0);
  CHECK(open_fd_count() == before);

  cp::Socket t = open_real_socket();
  CHECK_FALSE(t.close());
  CHECK_FALSE(t.close());
  CHECK(open_fd_count() == before);
}

TEST_CASE("every socket is close-on-exec", "[socket][security]") {
  for (bool nonblocking : {false, true}) {
    for (auto family : {cp::Family::ipv4, cp::Family::ipv6}) {
      auto h = cp::NativeSystem{}.open_socket(family, nonblocking);
      if (!h && h.error() == cp::Errc::address_family_not_supported) continue;  // no IPv6 here
      REQUIRE(h);
      cp::Socket s(*h);
      CHECK((::fcntl(s.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
      CHECK(((::fcntl(s.native_handle(), F_GETFL) & O_NONBLOCK) != 0) == nonblocking);
    }
  }
}

TEST_CASE("Socket reports its endpoints, and says why when it cannot", "[socket]") {
  cp::Socket s = open_real_socket();
  REQUIRE_FALSE(cp::NativeSystem{}.bind(s.native_handle(), cp::Endpoint::loopback_v4(0)));
  auto local = s.local_endpoint();
  REQUIRE(local);
  CHECK(local->is_loopback());
  CHECK(local->port() != 0);
  auto remote = s.remote_endpoint();  // not connected
  REQUIRE_FALSE(remote);
  CHECK(remote.error().code() == std::errc::not_connected);
  CHECK(remote.error().detail() == "getpeername");
}

TEST_CASE("a Socket over the fake system closes through the fake, once", "[socket][fake]") {
  cp::FakeSystem fake;
  {
    auto h = fake.open_socket(cp::Family::ipv4, true);
    REQUIRE(h);
    cp::BasicSocket<cp::FakeSystem> a(*h, fake);
    cp::BasicSocket<cp::FakeSystem> b(std::move(a));
    cp::BasicSocket<cp::FakeSystem> c;
    c = std::move(b);
    CHECK(fake.open_handles() == 1);
  }
  CHECK(fake.opened() == 1);
  CHECK(fake.closed() == 1);
  CHECK(fake.bad_closes() == 0);
}

TEST_CASE("close() is never retried, even when interrupted (EINTR)", "[socket][security]") {
  cp::FakeSystem fake;
  fake.fail(cp::Call::close, std::errc::interrupted);
  auto h = fake.open_socket(cp::Family::ipv4, false);
  REQUIRE(h);
  cp::BasicSocket<cp::FakeSystem> s(*h, fake);
  CHECK(s.close() == std::errc::interrupted);  // reported ...
  CHECK_FALSE(s.is_open());                    // ... but the handle is gone, as on Linux
  CHECK_FALSE(s.close());                      // and never closed again
  CHECK(fake.count(cp::Call::close) == 1);
  CHECK(fake.open_handles() == 0);
  CHECK(fake.bad_closes() == 0);
}
