// The seed's failure and its mitigations, for real, on loopback. The client closes first, so
// TIME_WAIT sits on the client's port, as in the seed. Only 127.0.0.1 is ever contacted.
#include <catch2/catch.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>
#include <csignal>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "fd_count.hpp"
#include "time_wait.hpp"
import connpolicy;
import connpolicy.testing;
#include "counting_system.hpp"
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test_support::open_fd_count;

namespace {

using test_support::CountingSystem;

// Sockets on 127.0.0.1/0.0.0.0 with this local port in TIME_WAIT, from /proc/net/tcp.
int time_wait_entries_now(std::uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);
  int n = 0;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state;
    in >> slot >> local >> remote >> state;
    const auto colon = local.find(':');
    if (colon != std::string::npos && std::stoul(local.substr(colon + 1), nullptr, 16) == port && state == "06") ++n;
  }
  return n;
}

// The same, allowing the kernel up to 1 s to finish a close that is under way.
int time_wait_entries(std::uint16_t port, int expected = 1) {
  int n = time_wait_entries_now(port);
  for (int i = 0; i < 100 && n != expected; ++i) {
    std::this_thread::sleep_for(10ms);
    n = time_wait_entries_now(port);
  }
  return n;
}

struct Counter {
  std::shared_ptr<int> retries = std::make_shared<int>(0);
  void operator()(const cp::AttemptEvent& e) const {
    if (e.action == cp::Action::retry) ++*retries;
  }
};

}  // namespace

TEST_CASE("seed, for real: a fixed port cannot reconnect while it is in TIME_WAIT", "[integration][seed]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto port = test_support::free_port_block(1);
    cp::Connector<cp::FixedPort, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
        cp::FixedPort::make(port).value()};
    {
      auto first = client.connect(remote);
      REQUIRE(first);
      CHECK(first->local_endpoint().value().port() == port);
    }  // the client closes first ...
    REQUIRE(server.wait_closed(1));  // ... then the server: the client's port is in TIME_WAIT
    CHECK(time_wait_entries(port) == 1);

    auto again = client.connect(remote);
    REQUIRE_FALSE(again);
    CHECK(again.error().condition() == cp::Errc::local_port_busy);
    CHECK(again.error().code() == std::errc::address_in_use);
    CHECK(again.error().step() == cp::Step::bind);
    const std::string m = again.error().message();
    CHECK_THAT(m, Contains("port " + std::to_string(port)));
    CHECK_THAT(m, Contains("TIME_WAIT"));
    CHECK_THAT(m, Contains("FixedPortRotation"));
    CHECK(*client.system().binds == 2);
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

TEST_CASE("FixedPort with reuse_address reconnects through TIME_WAIT at once", "[integration][seed]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  if (!cp::tcp_timestamps_enabled().value_or(false)) {
    WARN("net.ipv4.tcp_timestamps is not 1: SO_REUSEADDR cannot reconnect through TIME_WAIT here");
    return;
  }
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto port = test_support::free_port_block(1);
    cp::Connector<cp::FixedPort> client{cp::FixedPort::make(port, {.reuse_address = true}).value()};
    for (int i = 0; i < 5; ++i) {
      INFO("cycle " << i);
      auto s = client.connect(remote);
      REQUIRE(s);
      CHECK(s->local_endpoint().value().port() == port);
      s->close();
      REQUIRE(server.wait_closed(i + 1));
    }
    CHECK(time_wait_entries(port) == 1);  // the newest connection's; each reconnect replaced the last
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

TEST_CASE("rotation over 10 ports with reuse_address: 30 reconnects, one bind each", "[integration][rotation]") {
  if (!cp::tcp_timestamps_enabled().value_or(false)) {
    WARN("net.ipv4.tcp_timestamps is not 1: skipped");
    return;
  }
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto first = test_support::free_port_block(10);
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
        cp::FixedPortRotation::make(first, first + 9, {.reuse_address = true}).value()};
    for (int i = 0; i < 30; ++i) {
      INFO("cycle " << i);
      auto s = client.connect(remote);
      if (!s) FAIL(s.error().message());
      CHECK(*client.system().binds == i + 1);  // exactly one bind per connection
      s->close();
      // Client first, then the server (as in the seed): the port is in TIME_WAIT, not FIN_WAIT2,
      // and SO_REUSEADDR reconnects only through TIME_WAIT.
      REQUIRE(server.wait_closed(i + 1));
    }
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

TEST_CASE("rotation over 10 ports without reuse_address: 10 at once, then it waits for the cooldown",
          "[integration][rotation]") {
  // The server closes first here, so the client's ports hold no TIME_WAIT and a short cooldown
  // (instead of the real 60 s) is honest: after it, each port really is free again.
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server(cp::LoopbackServer::Mode::server_closes_first);
    const auto remote = server.endpoint();
    const auto first = test_support::free_port_block(10);
    cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy, CountingSystem, Counter> client{
        cp::FixedPortRotation::make(first, first + 9, {.cooldown = 200ms}).value(),
        cp::ExponentialRetry{{.initial = 10ms, .max_attempts = 3}}};
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 30; ++i) {
      INFO("cycle " << i);
      auto s = client.connect(remote);
      REQUIRE(s);
      CHECK(*client.system().binds == i + 1);  // one bind per connection: no port is tried in vain
      if (i < 10) CHECK(*client.observer().retries == 0);
      char byte;
      CHECK(::recv(s->native_handle(), &byte, 1, 0) == 0);  // the server's FIN: it closed first
    }
    CHECK(*client.observer().retries >= 2);                    // it waited for cooled ports instead of failing
    CHECK(std::chrono::steady_clock::now() - start >= 400ms);  // two rounds of 200 ms cooldown at least
    for (int p = first; p <= first + 9; ++p) CHECK(time_wait_entries(static_cast<std::uint16_t>(p), 0) == 0);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("rotation over 10 ports with reset close: 30 reconnects at once, no TIME_WAIT left",
          "[integration][rotation]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto first = test_support::free_port_block(10);
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
        cp::FixedPortRotation::make(first, first + 9).value()};  // default cooldown: TIME_WAIT
    for (int i = 0; i < 30; ++i) {
      INFO("cycle " << i);
      auto s = client.connect(remote);
      REQUIRE(s);
      CHECK(*client.system().binds == i + 1);
      REQUIRE_FALSE(s->close_reset());  // RST: the port is free at once, and the rotation knows it
    }
    for (int p = first; p <= first + 9; ++p) CHECK(time_wait_entries(static_cast<std::uint16_t>(p), 0) == 0);
  }
  CHECK(open_fd_count() == fds);
}

// A rotation told a cooldown far shorter than the kernel's TIME_WAIT (50 ms instead of 60 s).
TEST_CASE("rotation without a census whose ports are all in TIME_WAIT says local_ports_exhausted after one bind each",
          "[integration][rotation]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto first = test_support::free_port_block(10);
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
        cp::FixedPortRotation::make(first, first + 9, {.cooldown = 50ms, .use_census = false}).value()};
    for (int i = 0; i < 10; ++i) REQUIRE(client.connect(remote));  // each closed at once: TIME_WAIT
    REQUIRE(server.wait_closed(10));
    std::this_thread::sleep_for(100ms);  // our cooldown (50 ms) is over; the kernel's 60 s is not
    auto s = client.connect(remote);
    REQUIRE_FALSE(s);
    CHECK(s.error().condition() == cp::Errc::local_ports_exhausted);
    CHECK(*client.system().binds == 20);  // each port tried once more, then no spinning
    REQUIRE(s.error().retry_after());
    CHECK(*s.error().retry_after() <= 50ms);
    CHECK_THAT(s.error().message(), Contains("cooling down"));
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

// The same mistake with the census on (the default): the first failed bind makes the rotation
// ask the kernel, which knows every port's TIME_WAIT, so it stops after one bind, not ten, and
// says how long the kernel will really hold the first port.
TEST_CASE("rotation with the census learns the kernel's TIME_WAIT after one failed bind",
          "[integration][rotation][census]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto first = test_support::free_port_block(10);
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
        cp::FixedPortRotation::make(first, first + 9, {.cooldown = 50ms}).value()};
    for (int i = 0; i < 10; ++i) REQUIRE(client.connect(remote));
    REQUIRE(server.wait_closed(10));
    std::this_thread::sleep_for(100ms);
    auto s = client.connect(remote);
    REQUIRE_FALSE(s);
    CHECK(s.error().condition() == cp::Errc::local_ports_exhausted);
    CHECK(*client.system().binds == 11);  // one bind proved the 50 ms wrong; the census did the rest
    REQUIRE(s.error().retry_after());
    CHECK(*s.error().retry_after() > 50s);  // the kernel's 60 s TIME_WAIT, minus what has passed
    CHECK(*s.error().retry_after() <= 60s + cp::time_wait_timer_slack());
    CHECK_THAT(s.error().message(), Contains("the kernel's TIME_WAIT timer"));
    CHECK(client.bind_policy().snapshot().surveys >= 2);  // at start, and after the failed bind
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("a port held by a socket the census cannot see (bound, not listening) fails one bind, not one per connect",
          "[integration][rotation][census]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto first = test_support::free_port_block(2);
    // Another program's socket, bound and nothing more. /proc/net/tcp never lists such a socket
    // (netlink before recent kernels neither; newer ones report it as CLOSE; Wine's Windows table neither).
    const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(holder >= 0);
    sockaddr_storage address{};
    const auto length = cp::Endpoint::any_v4(static_cast<std::uint16_t>(first)).to_sockaddr(address);
    REQUIRE(::bind(holder, reinterpret_cast<const sockaddr*>(&address), static_cast<socklen_t>(length)) == 0);
    cp::KernelCensus blind(cp::CensusMethod::proc_net_tcp);
    auto seen = blind.survey(cp::PortRange::make(first, first).value());
    REQUIRE(seen);
    CHECK(seen->uses.empty());  // this census cannot see it: only the failed bind tells

    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
        cp::FixedPortRotation::make(first, first + 1, {.census = &blind}).value()};
    for (int i = 0; i < 12; ++i) {
      auto s = client.connect(server.endpoint());
      REQUIRE(s);
      CHECK(s->local_endpoint().value().port() == first + 1);
      s->close_reset();  // no TIME_WAIT: the free port is ready again at once
    }
    // 12 connections, and at most one failed bind on the held port: after it fails, a census
    // that finds nothing there does not make the rotation try it again (it did, about every
    // other connect, when "nothing in the census" counted as free).
    CHECK(*client.system().binds <= 13);
    ::close(holder);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("EphemeralBind and NoBind make 1000 reconnects each", "[integration]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    cp::Connector<cp::EphemeralBind> ephemeral{cp::EphemeralBind{cp::Endpoint::loopback_v4(0)}};
    cp::Connector<cp::NoBind> plain;
    int made = 0;
    for (int i = 0; i < 1000; ++i) made += ephemeral.connect(remote) ? 1 : 0;
    for (int i = 0; i < 1000; ++i) made += plain.connect(remote) ? 1 : 0;
    CHECK(made == 2000);
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

TEST_CASE("ephemeral exhaustion, reproduced with a 4-port kernel range, is local_ports_exhausted",
          "[integration][exhaustion]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    // The per-socket range is intersected with the system's ephemeral range: pick it inside.
    const auto [low, high] = test_support::ephemeral_range();
    const int first = test_support::free_port_block(4, low, high);
    cp::Connector<cp::KernelPortRange> client{cp::KernelPortRange{cp::PortRange::make(first, first + 3).value()}};
    std::vector<cp::Socket> held;
    for (int i = 0; i < 4; ++i) {
      auto s = client.connect(remote);
      if (!s && s.error().step() == cp::Step::set_option) {
        WARN("IP_LOCAL_PORT_RANGE is not available on this kernel: " << s.error().message());
        return;
      }
      REQUIRE(s);
      const auto port = s->local_endpoint().value().port();
      CHECK(port >= first);
      CHECK(port <= first + 3);
      held.push_back(std::move(*s));
    }
    auto fifth = client.connect(remote);
    REQUIRE_FALSE(fifth);
    CHECK(fifth.error().code() == std::errc::address_not_available);  // EADDRNOTAVAIL at connect
    CHECK(fifth.error().step() == cp::Step::connect);
    CHECK(fifth.error().condition() == cp::Errc::local_ports_exhausted);
    CHECK_THAT(fifth.error().message(), Contains("local ports exhausted"));
    held.clear();
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

TEST_CASE("refused connections back off and give up after max_attempts, for real", "[integration][retry]") {
  const auto fds = open_fd_count();
  auto nobody = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));  // bound, never listening
  REQUIRE(nobody);
  cp::Connector<cp::NoBind, cp::ExponentialRetry> client{
      cp::NoBind{}, cp::ExponentialRetry{{.initial = 1ms, .max_attempts = 3, .jitter = cp::Jitter::none}}};
  auto s = client.connect(nobody->endpoint());
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::connection_refused);
  CHECK(s.error().attempts() == 3);
  CHECK_THAT(s.error().message(), Contains("max_attempts"));
  nobody->release();
  CHECK(open_fd_count() == fds);
}

TEST_CASE("a connect over IPv6 loopback works when the host has it", "[integration]") {
  cp::NativeSystem sys;
  auto probe = sys.open_socket(cp::Family::ipv6, false);
  if (!probe) {
    WARN("no IPv6 here");
    return;
  }
  cp::Socket server(*probe);
  if (sys.bind(server.native_handle(), cp::Endpoint::loopback_v6(0))) {
    WARN("no ::1 here");
    return;
  }
  REQUIRE(::listen(server.native_handle(), 8) == 0);
  const auto endpoint = server.local_endpoint().value();
  cp::Connector<cp::EphemeralBind> client;
  auto s = client.connect(endpoint);
  REQUIRE(s);
  CHECK(s->local_endpoint().value().is_v6());
}

namespace {
std::atomic<int> alarms{0};
extern "C" void count_alarm(int) { alarms.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

TEST_CASE("a timer signal firing every millisecond does not cut a connect wait short", "[integration][signals]") {
  const auto fds = open_fd_count();
  {
    // A listener whose accept queue is full drops new SYNs: a connect to it stays pending.
    cp::NativeSystem sys;
    cp::Socket listener(sys.open_socket(cp::Family::ipv4, false).value());
    REQUIRE_FALSE(sys.bind(listener.native_handle(), cp::Endpoint::loopback_v4(0)));
    REQUIRE(::listen(listener.native_handle(), 0) == 0);
    const auto target = listener.local_endpoint().value();
    std::vector<cp::Socket> fillers;
    cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy> quick{{.options = {.connect_timeout = 100ms}}};
    for (int i = 0; i < 8; ++i)  // bounded: the queue holds one or two
      if (auto s = quick.connect(target)) fillers.push_back(std::move(*s));
    REQUIRE_FALSE(fillers.empty());

    struct sigaction action{}, old{};
    action.sa_handler = count_alarm;  // no SA_RESTART: poll() returns EINTR
    REQUIRE(::sigaction(SIGALRM, &action, &old) == 0);
    const itimerval every_ms{{0, 1000}, {0, 1000}};
    alarms = 0;
    REQUIRE(::setitimer(ITIMER_REAL, &every_ms, nullptr) == 0);

    cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy> client{{.options = {.connect_timeout = 300ms}}};
    const auto start = std::chrono::steady_clock::now();
    auto s = client.connect(target);
    const auto took = std::chrono::steady_clock::now() - start;

    const itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old, nullptr);

    REQUIRE_FALSE(s);
    CHECK(s.error().condition() == cp::Errc::timed_out);
    CHECK(s.error().step() == cp::Step::wait);
    CHECK(took >= 300ms);  // the signals did not end the wait early ...
    CHECK(took < 5s);      // ... nor stretch it without bound
    CHECK(alarms.load() > 10);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("SourceAddressPool spreads connections over its addresses, for real", "[integration][pool]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<cp::SourceAddressPool> client{
        cp::SourceAddressPool::make(
            {cp::Endpoint::parse("127.0.0.2:0").value(), cp::Endpoint::parse("127.0.0.3:0").value()})
            .value()};
    std::vector<cp::Socket> held;
    std::set<std::string> sources;
    for (int i = 0; i < 6; ++i) {
      auto s = client.connect(server.endpoint());
      REQUIRE(s);
      sources.insert(s->local_endpoint().value().address_string());
      held.push_back(std::move(*s));
    }
    CHECK(sources == std::set<std::string>{"127.0.0.2", "127.0.0.3"});
  }
  CHECK(open_fd_count() == fds);
}

// 192.0.2.1 (TEST-NET-1) is no address of this host: its bind fails with EADDRNOTAVAIL, for real,
// and the connect goes on from the pool's next address, at once.
TEST_CASE("SourceAddressPool with an address not on this host connects from the next, for real",
          "[integration][pool]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::Connector<cp::SourceAddressPool, cp::NoRetry> client{
        cp::SourceAddressPool::make({cp::Endpoint::ipv4({192, 0, 2, 1}, 0), cp::Endpoint::parse("127.0.0.2:0").value()})
            .value()};
    for (int i = 0; i < 3; ++i) {
      auto s = client.connect(server.endpoint());
      REQUIRE(s);
      CHECK(s->local_endpoint().value().address_string() == "127.0.0.2");
    }
    cp::Connector<cp::SourceAddressPool, cp::NoRetry> lost{
        cp::SourceAddressPool::make({cp::Endpoint::ipv4({192, 0, 2, 1}, 0), cp::Endpoint::ipv4({192, 0, 2, 2}, 0)})
            .value()};
    auto s = lost.connect(server.endpoint());
    REQUIRE_FALSE(s);
    CHECK(s.error() == cp::Errc::address_not_available);
    CHECK_THAT(s.error().message(), Catch::Matchers::Contains("192.0.2.1 (not on this host") &&
                                        Catch::Matchers::Contains("192.0.2.2 (not on this host"));
  }
  CHECK(open_fd_count() == fds);
}

// A 4-port rotation: 2 ports in TIME_WAIT after normal closes, 2 lent to open sockets that are
// closed with a reset 100 ms later. A connect made meanwhile is not told to wait for the first
// TIME_WAIT (a minute): it backs off at its own pace and takes a lent port as soon as it is back.
TEST_CASE("rotation with ports lent and cooling: a connect meanwhile gets a port back within its deadline",
          "[integration][rotation]") {
  test_support::needs_lasting_time_wait();  // two ports must stay in TIME_WAIT the whole test
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto remote = server.endpoint();
    const auto first = test_support::free_port_block(4);
    cp::FixedPortRotation rotation = cp::FixedPortRotation::make(first, first + 3).value();
    cp::Connector<cp::FixedPortRotation> setup{rotation};
    for (int i = 0; i < 2; ++i) REQUIRE(setup.connect(remote));  // closed first: TIME_WAIT
    REQUIRE(server.wait_closed(2));
    auto lent_a = setup.connect(remote);
    auto lent_b = setup.connect(remote);
    REQUIRE(lent_a);
    REQUIRE(lent_b);
    std::thread closer([&] {
      std::this_thread::sleep_for(100ms);
      lent_a->close_reset();
      lent_b->close_reset();
    });
    cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry> client{
        rotation, cp::ExponentialRetry{{.initial = 20ms, .max_delay = 200ms, .max_attempts = 0, .deadline = 5s}}};
    const auto start = std::chrono::steady_clock::now();
    auto s = client.connect(remote);
    const auto took = std::chrono::steady_clock::now() - start;
    closer.join();
    REQUIRE(s);  // before: local_ports_exhausted at once ("the next wait would end after the deadline")
    CHECK(took >= 100ms);
    CHECK(took < 2s);  // not the minute until the first TIME_WAIT ends
    s->close_reset();
  }
  CHECK(open_fd_count() == fds);
}
