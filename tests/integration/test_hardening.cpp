// Secure defaults and edge cases: each claim of docs/security.md has its test here.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test_support::open_fd_count;

namespace {
int option(const cp::Socket& s, int level, int name) {
  int value = -1;
  socklen_t length = sizeof value;
  REQUIRE(::getsockopt(s.native_handle(), level, name, &value, &length) == 0);
  return value;
}

struct Flags {
  bool cloexec;
  int reuse_address, reuse_port;
};

template <class Connector>
Flags flags_of(Connector& c, const cp::Endpoint& remote) {
  auto s = c.connect(remote);
  REQUIRE(s);
  return {(::fcntl(s->native_handle(), F_GETFD) & FD_CLOEXEC) != 0, option(*s, SOL_SOCKET, SO_REUSEADDR),
          option(*s, SOL_SOCKET, SO_REUSEPORT)};
}
}  // namespace

TEST_CASE("security: every policy's socket is close-on-exec, never SO_REUSEPORT, SO_REUSEADDR only when asked",
          "[security]") {
  cp::LoopbackServer server;
  const auto remote = server.endpoint();
  cp::Connector<cp::NoBind> no_bind;
  cp::Connector<cp::EphemeralBind> ephemeral;
  cp::Connector<cp::FixedPort> fixed{cp::FixedPort::make(cp::find_free_port_range(1).value().first()).value()};
  cp::Connector<cp::FixedPort> fixed_reuse{
      cp::FixedPort::make(cp::find_free_port_range(1).value().first(), {.reuse_address = true}).value()};
  cp::Connector<cp::FixedPortRotation> rotation{cp::FixedPortRotation{cp::find_free_port_range(4).value()}};
  cp::Connector<cp::FixedPortRotation> rotation_reuse{
      cp::FixedPortRotation{cp::find_free_port_range(4).value(), {.reuse_address = true}}};
  const Flags f[] = {flags_of(no_bind, remote),     flags_of(ephemeral, remote), flags_of(fixed, remote),
                     flags_of(fixed_reuse, remote), flags_of(rotation, remote),  flags_of(rotation_reuse, remote)};
  const int asked_reuse[] = {0, 0, 0, 1, 0, 1};
  for (int i = 0; i < 6; ++i) {
    INFO("policy #" << i);
    CHECK(f[i].cloexec);
    CHECK(f[i].reuse_port == 0);
    CHECK((f[i].reuse_address != 0) == (asked_reuse[i] != 0));
  }
}

TEST_CASE("security: destinations TCP cannot reach are refused before any syscall", "[security]") {
  cp::FakeSystem sys;
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> c{{.system = sys}};
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& k : {Case{"127.0.0.1:0", "port 0"}, Case{"0.0.0.0:80", "unspecified"},
                        Case{"[::]:80", "unspecified"}, Case{"224.0.0.1:80", "multicast"},
                        Case{"[ff02::1]:80", "multicast"}, Case{"255.255.255.255:80", "broadcast"}}) {
    INFO(k.text);
    auto s = c.connect(cp::Endpoint::parse(k.text).value());
    REQUIRE_FALSE(s);
    CHECK(s.error().condition() == cp::Errc::invalid_argument);
    CHECK_THAT(s.error().message(), Contains(k.says));
  }
  // One bad endpoint in a list refuses the list: a configuration mistake, not a network failure.
  const std::vector<cp::Endpoint> list{cp::Endpoint::loopback_v4(80), cp::Endpoint::any_v4(80)};
  CHECK_FALSE(c.connect(std::span<const cp::Endpoint>(list)));
  CHECK(sys.calls().empty());
}

TEST_CASE("limits: out of descriptors (EMFILE) is a clear error and leaks nothing", "[limits]") {
  cp::LoopbackServer server;
  const auto fds = open_fd_count();
  // Under UBSan, the first vptr check of a type probes memory through a pipe(), which fails
  // with EMFILE and is misreported as an invalid vptr. Take the same error path once first (with
  // the fake system), and let the server's thread start, so those checks are cached before
  // descriptors run out.
  {
    cp::FakeSystem fake;
    fake.fail(cp::Call::open_socket, std::errc::too_many_files_open);
    auto warm =
        cp::Connector<cp::EphemeralBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem>{{.system = fake}}.connect(
            server.endpoint());
    REQUIRE_FALSE(warm);
    CHECK_THAT(warm.error().message(), Contains("RLIMIT_NOFILE"));
    // ... and let the server's thread start for real (a connection accepted and closed).
    REQUIRE(cp::Connector<cp::NoBind>{}.connect(server.endpoint()));
    REQUIRE(server.wait_closed(1));
  }
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  const int lowest_free = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // new descriptors start here
  REQUIRE(lowest_free >= 0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  cp::Connector<cp::EphemeralBind> client;
  auto s = client.connect(server.endpoint());
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::too_many_open_sockets);
  CHECK(s.error().step() == cp::Step::socket);
  CHECK_THAT(s.error().message(), Contains("RLIMIT_NOFILE"));
  CHECK(open_fd_count() == fds);
}

TEST_CASE("edge: a server that accepts and resets at once", "[limits]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server(cp::LoopbackServer::Mode::reset_on_accept);
    cp::Connector<cp::NoBind> client;
    for (int i = 0; i < 20; ++i) {
      auto s = client.connect(server.endpoint());
      if (!s) {  // the reset can beat the connect's completion
        CHECK(s.error().condition() == cp::Errc::connection_reset);
        continue;
      }
      char byte;
      const ssize_t r = ::recv(s->native_handle(), &byte, 1, 0);  // blocking: the socket is blocking again
      CHECK(r <= 0);
      if (r < 0) CHECK(errno == ECONNRESET);
    }
    CHECK(server.wait_closed(20));
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("edge: IPv6 loopback with a scope id", "[limits]") {
  cp::NativeSystem sys;
  auto probe = sys.open_socket(cp::Family::ipv6, false);
  if (!probe) return;  // no IPv6 here
  cp::Socket listener(*probe);
  if (sys.bind(listener.native_handle(), cp::Endpoint::loopback_v6(0))) return;
  REQUIRE(::listen(listener.native_handle(), 4) == 0);
  const auto port = listener.local_endpoint().value().port();
  const auto scoped = cp::Endpoint::parse("[::1%lo]:" + std::to_string(port));
  REQUIRE(scoped);
  CHECK(scoped->scope_id() != 0);
  const auto fds = open_fd_count();
  {
    cp::Connector<cp::EphemeralBind> client;
    auto s = client.connect(*scoped);
    // Linux ignores a scope id on ::1; either way the result is a socket or a clear error.
    if (s)
      CHECK(s->remote_endpoint().value().port() == port);
    else
      CHECK(s.error().condition() != cp::Errc::other);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("security: time is the steady clock, never the wall clock", "[security]") {
  STATIC_REQUIRE(std::is_same_v<cp::Timer::clock, std::chrono::steady_clock>);
  STATIC_REQUIRE(cp::Timer::clock::is_steady);
}

TEST_CASE("security: messages quote outside text only escaped and short", "[security]") {
  const std::string secret(300, 'A');
  auto e = cp::Endpoint::parse("\n" + secret + ":80");
  REQUIRE_FALSE(e);
  CHECK(e.error().message().find('\n') == std::string::npos);
  CHECK(e.error().message().find(secret.substr(0, 80)) == std::string::npos);  // cut to 64 characters
}
