// Connecting to a name through Asio's resolver, and through SystemResolver, for real. ctest runs
// these ([netns]) under `unshare -n`: in a network namespace whose only interface is loopback, so
// "localhost"'s IPv4 address comes from /etc/hosts and its IPv6 lookup, which falls through to
// DNS when /etc/hosts has no ::1, fails here instead of sending a query out.
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <optional>
#include <stop_token>
#include <vector>
#include "fd_count.hpp"
#include "netns.hpp"
import connpolicy;
import connpolicy.testing;
import connpolicy.asio;
#include "black_hole.hpp"
#include "fake_name_server.hpp"
#include "events.hpp"
#include "late_aaaa.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;

TEST_CASE("asio: a name connects through Asio's resolver, the blocking driver through SystemResolver",
          "[.][netns][names]") {
  REQUIRE(test_support::in_loopback_only_namespace());  // else this would send DNS queries out
  const auto fds = test_support::open_fd_count();
  {
    cp::LoopbackServer server;  // 127.0.0.1 only: an IPv6 address, if any, refuses
    const auto name = *cp::HostPort::from("localhost", server.endpoint().port());
    cp::Connector<cp::EphemeralBind, cp::FixedDelayRetry> client{
        {.bind = cp::EphemeralBind{},
         .retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 2}},
         .options = {.connect_timeout = 2s}}};
    asio::io_context io;
    std::optional<Result> got;
    cp::asio::async_connect(io.get_executor(), client, name, [&](Result r) { got.emplace(std::move(r)); });
    io.run_for(10s);
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->socket().remote_endpoint().port() == server.endpoint().port());
    (*got)->close_reset();

    auto blocking = client.connect(name);
    REQUIRE(blocking);
    CHECK(blocking->remote_endpoint().value() == server.endpoint());
    blocking->close();
    REQUIRE(server.wait_closed(2));  // the server's ends, closed on its own thread
  }
  CHECK(test_support::open_fd_count() == fds);
}

TEST_CASE("asio: a name that does not exist fails at the resolve step, before any socket", "[.][netns][names]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  cp::Connector<cp::NoBind> client{{.options = {.connect_timeout = 2s}}};
  asio::io_context io;
  std::optional<Result> got;
  cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::parse("no-such-host.invalid:7000"),
                          [&](Result r) { got.emplace(std::move(r)); });
  io.run_for(10s);
  REQUIRE(got);
  REQUIRE_FALSE(got->has_value());
  CHECK(got->error().step() == cp::Step::resolve);
  CHECK_THAT(got->error().message(), Catch::Matchers::Contains("no-such-host.invalid:7000"));
}

using test_support::dual_test_hosts;

// Happy Eyeballs through Asio: "dual.test" is ::1 (black-holed: its accept queue is full) and
// 127.0.0.1 (a listener), both at one port, by this process's own /etc/hosts.
TEST_CASE("asio: a name whose IPv6 address black-holes connects over IPv4 after the attempt delay",
          "[.][netns][race]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  cp::LoopbackServer server;
  const auto port = server.endpoint().port();
  auto hole = test_support::black_hole(cp::Family::ipv6, port);
  REQUIRE_FALSE(hole.fillers.empty());
  const auto fds = test_support::open_fd_count();
  {
    cp::FixedPortRotation rotation{cp::PortRange{47620, 47629}, {.use_census = false}};
    std::vector<cp::AttemptEvent> events;
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, cp::NativeSystem, test_support::Recorder>
        client{{.bind = rotation, .options = {.connect_timeout = 5s}, .observer = test_support::Recorder{&events}}};
    asio::io_context io;
    std::optional<Result> got;
    const auto start = std::chrono::steady_clock::now();
    cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::from("dual.test", port),
                            [&](Result r) { got.emplace(std::move(r)); });
    io.run_for(10s);
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->socket().remote_endpoint().address().is_v4());
    CHECK(took >= 250ms);
    CHECK(took < 5s);
    CHECK(rotation.snapshot().in_use == 1);  // the winner's; the IPv6 racer's port came back
    CHECK(rotation.snapshot().cooling == 0);
    // The observer saw both: the winner, then the IPv6 racer closed unfinished (it started first).
    REQUIRE(events.size() == 2);
    CHECK(events[0].connected());
    CHECK(events[0].remote.is_v4());
    CHECK(events[1].abandoned);
    CHECK(events[1].remote.is_v6());
    CHECK(events[1].started < events[0].started);
    (*got)->close_reset();
    CHECK(rotation.snapshot().in_use == 0);
  }
  REQUIRE(server.wait_closed(1));  // the server's end, closed on its own thread (CI once counted it)
  CHECK(test_support::open_fd_count() == fds);
}

TEST_CASE("asio: a race given up while an attempt is in flight closes that attempt too", "[.][netns][race]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  const auto port = [] {  // 127.0.0.1 there refuses: nobody listens
    cp::LoopbackServer gone;
    return gone.endpoint().port();
  }();
  auto hole = test_support::black_hole(cp::Family::ipv6, port);  // and ::1 never answers
  REQUIRE_FALSE(hole.fillers.empty());
  const auto fds = test_support::open_fd_count();
  {
    cp::Connector<cp::EphemeralBind, cp::NoRetry, cp::FailFast> client{
        {.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 5s}}};
    asio::io_context io;
    std::optional<Result> got;
    cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::from("dual.test", port),
                            [&](Result r) { got.emplace(std::move(r)); });
    io.run_for(10s);  // returns once no work is left: the IPv6 attempt's too
    REQUIRE(got);
    REQUIRE_FALSE(got->has_value());
    CHECK(got->error() == cp::Errc::connection_refused);  // IPv4's, at 250 ms: FailFast gives up
    CHECK(io.stopped());
  }
  CHECK(test_support::open_fd_count() == fds);  // the IPv6 attempt was closed, not left to time out
}

namespace {
using test_support::listen_on_ipv6_loopback;

// "late.test" from the FakeNameServer: A (127.0.0.1, black-holed) at once, AAAA (::1, listening)
// `aaaa_after` late. How long each driver takes to connect, and over which family.
struct Took {
  std::chrono::milliseconds blocking, asio;
  bool blocking_v6 = false, asio_v6 = false;
};
Took connect_with_aaaa_late(std::chrono::milliseconds aaaa_after) {
  Took took{};
  const test_support::LateAaaa late(aaaa_after);
  REQUIRE(late.ok());
  const auto name = late.name();
  cp::Connector<cp::EphemeralBind> client{{.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 5s}}};
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  {
    auto s = client.connect(name);
    took.blocking = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    REQUIRE(s);
    took.blocking_v6 = s->remote_endpoint().value().is_v6();
  }
  asio::io_context io;
  std::optional<Result> got;
  start = clock::now();
  cp::asio::async_connect(io.get_executor(), client, name, [&](Result r) {
    took.asio = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    got.emplace(std::move(r));
  });
  io.run_for(10s);
  REQUIRE(got);
  REQUIRE(got->has_value());
  took.asio_v6 = (*got)->socket().remote_endpoint().address().is_v6();
  (*got)->close_reset();
  return took;
}
}  // namespace

// RFC 8305's resolution delay through real lookups (getaddrinfo in both drivers' resolvers),
// with the AAAA answer held back by this test's own name server.
TEST_CASE("names over DNS: AAAA 30 ms late is waited for (within the 50 ms resolution delay), by both drivers",
          "[.][netns][race][dns]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  const auto fds = test_support::open_fd_count();
  const Took took = connect_with_aaaa_late(30ms);
  INFO("blocking " << took.blocking.count() << " ms, asio " << took.asio.count() << " ms");
  CHECK(took.blocking_v6);  // IPv4 black-holes: had it gone first, IPv6 would start at 250 ms
  CHECK(took.blocking >= 30ms);
  CHECK(took.blocking < 250ms);
  CHECK(took.asio_v6);
  CHECK(took.asio >= 30ms);
  CHECK(took.asio < 250ms);
  CHECK(test_support::open_fd_count() == fds);
}

TEST_CASE("names over DNS: AAAA 150 ms late joins the race IPv4 began at 50 ms, by both drivers",
          "[.][netns][race][dns]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  const auto fds = test_support::open_fd_count();
  const Took took = connect_with_aaaa_late(150ms);
  INFO("blocking " << took.blocking.count() << " ms, asio " << took.asio.count() << " ms");
  // IPv4 at 50 ms (black-holed), IPv6 at its turn, 50 + 250 = 300 ms: not at 150 (the answer),
  // and not never (a late answer dropped: the 5 s connect timeout, then a failure).
  CHECK(took.blocking_v6);
  CHECK(took.blocking >= 295ms);
  CHECK(took.blocking < 1s);
  CHECK(took.asio_v6);
  CHECK(took.asio >= 295ms);
  CHECK(took.asio < 1s);
  CHECK(test_support::open_fd_count() == fds);
}

// DNS semantics through the real getaddrinfo: a name with an AAAA record and no A record gets an
// empty IPv4 answer (EAI_NODATA), not "host not found", and the connect goes over IPv6; a name the
// server does not know is host_not_found, named with what each family got.
TEST_CASE("names over DNS: no record of one family is an empty answer, not host_not_found", "[.][netns][dns]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  auto v6 = listen_on_ipv6_loopback();
  REQUIRE(v6.port != 0);
  test_support::FakeNameServer dns("v6only.test", {{}, 0ms}, {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, 0ms});
  REQUIRE(dns.ok());
  const auto name = *cp::HostPort::from("v6only.test", v6.port);
  const cp::SystemResolver resolver;
  const auto a = resolver.resolve(name, cp::Family::ipv4, 2s, {});
  REQUIRE(a);  // no A record: an empty answer
  CHECK(a->empty());
  const auto aaaa = resolver.resolve(name, cp::Family::ipv6, 2s, {});
  REQUIRE(aaaa);
  CHECK(*aaaa == std::vector{cp::Endpoint::loopback_v6(v6.port)});

  cp::Connector<cp::EphemeralBind> client{{.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 2s}}};
  auto s = client.connect(name);
  REQUIRE(s);
  CHECK(s->remote_endpoint().value() == cp::Endpoint::loopback_v6(v6.port));
  s->close_reset();

  auto unknown = client.connect(*cp::HostPort::from("unknown.test", v6.port));
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error() == cp::Errc::host_not_found);
  CHECK_THAT(unknown.error().message(), Catch::Matchers::Contains("IPv6 (AAAA): no such name") &&
                                            Catch::Matchers::Contains("IPv4 (A): no such name"));
}

namespace {
// This process's threads now (Linux: /proc/self/task).
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// A name server that never answers: 127.0.0.1:53 bound, never read. With this namespace's
// resolv.conf (timeout:1 attempts:1) getaddrinfo gives up on its own after about a second.
struct SilentNameServer {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  SilentNameServer() {
    sockaddr_in here{};
    here.sin_family = AF_INET;
    here.sin_port = htons(53);
    here.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&here), sizeof here) != 0) close();
  }
  ~SilentNameServer() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Waits (at most 10 s, in 10 ms steps) until no helper thread runs and the process has
// `threads` threads again. True when it came to that.
bool helpers_finished(std::size_t threads) {
  for (int i = 0; i < 1000; ++i) {
    if (cp::SystemResolver::helper_threads().running == 0 && thread_count() == threads) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}
}  // namespace

// Lookups under load: 200 connects at once through the Asio driver (one io thread), to 20 names
// whose name server never answers, each connect with a 300 ms limit. Lookups of one name and
// family share one getaddrinfo; at most 4 helper threads run (the limit this test sets), so 32 of
// the 40 lookups wait in line and are never asked once their callers have given up. Every connect
// ends by its limit, as try_again at the resolve step; the threads never exceed the bound; once
// the server answers, a connect succeeds, and threads and descriptors come back to their count.
TEST_CASE("names over DNS: a storm of 200 connects to a silent name server is bounded in threads and time",
          "[.][netns][dns][storm]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  REQUIRE(helpers_finished(thread_count()));  // an earlier test's lookups have ended
  const std::size_t threads_before = thread_count();
  const std::size_t fds_before = test_support::open_fd_count();
  const std::size_t limit_before = cp::SystemResolver::helper_threads().limit;
  cp::SystemResolver::set_helper_thread_limit(4);
  const std::size_t joined_before = cp::SystemResolver::helper_threads().joined;

  std::optional<SilentNameServer> silent(std::in_place);
  REQUIRE(silent->fd >= 0);
  cp::Connector<cp::EphemeralBind, cp::NoRetry> client{
      {.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 300ms}}};
  constexpr int connects = 200;
  std::vector<std::optional<Result>> got(connects);
  std::vector<std::chrono::milliseconds> took(connects);
  std::size_t most_threads = 0;
  {
    asio::io_context io;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < connects; ++i)
      cp::asio::async_connect(io.get_executor(), client,
                              *cp::HostPort::from("storm" + std::to_string(i % 20) + ".test", 7000), [&, i](Result r) {
                                took[i] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start);
                                got[i].emplace(std::move(r));
                              });
    for (int step = 0; step < 300 && !io.stopped(); ++step) {  // 3 s at most; the connects end by 300 ms
      io.run_for(10ms);
      most_threads = std::max(most_threads, thread_count());
    }
  }
  const auto use = cp::SystemResolver::helper_threads();
  INFO("most threads " << most_threads << " (before " << threads_before << "), peak helpers " << use.peak);
  CHECK(most_threads <= threads_before + 4);
  CHECK(use.running <= 4);
  CHECK(use.joined - joined_before >= connects * 2 - 40);  // 20 names x 2 families asked once each
  int in_line = 0;
  for (int i = 0; i < connects; ++i) {
    INFO("connect " << i);
    REQUIRE(got[i]);
    REQUIRE_FALSE(got[i]->has_value());
    const cp::NetError& e = got[i]->error();
    CHECK(e.step() == cp::Step::resolve);
    CHECK(e == cp::Errc::try_again);
    CHECK(took[i] < 1500ms);  // its 300 ms and the io thread's turn, never the name server's 1 s
    if (e.message().find("the lookup never started") != std::string::npos) ++in_line;
  }
  CHECK(in_line > 0);  // 40 lookups, 4 threads: most waited in line

  // The server answers again: lookups run, the threads end, nothing is left open.
  silent.reset();
  CHECK(helpers_finished(threads_before));  // the lookups left behind end on their own
  {
    cp::LoopbackServer server;
    test_support::FakeNameServer dns("storm0.test", {{{127, 0, 0, 1}}, 0ms}, {{}, 0ms});
    REQUIRE(dns.ok());
    cp::Connector<cp::EphemeralBind, cp::NoRetry> patient{
        {.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 3s}}};
    auto s = patient.connect(*cp::HostPort::from("storm0.test", server.endpoint().port()));
    REQUIRE(s);
    s->close_reset();
  }
  cp::SystemResolver::set_helper_thread_limit(limit_before);
  CHECK(helpers_finished(threads_before));
  CHECK(cp::SystemResolver::helper_threads().waiting == 0);
  CHECK(test_support::open_fd_count() == fds_before);
}

// The blocking driver: 20 threads connect to one silent name at once; the 40 lookups they ask
// for are 2 getaddrinfo calls (one per family), and each connect still ends by its own limit.
TEST_CASE("names over DNS: blocking connects to one name share its lookups", "[.][netns][dns][storm]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  REQUIRE(helpers_finished(thread_count()));
  const std::size_t threads_before = thread_count();
  const std::size_t fds_before = test_support::open_fd_count();
  const auto before = cp::SystemResolver::helper_threads();
  {
    SilentNameServer silent;
    REQUIRE(silent.fd >= 0);
    cp::Connector<cp::EphemeralBind, cp::NoRetry> client{
        {.bind = cp::EphemeralBind{}, .options = {.connect_timeout = 200ms}}};
    constexpr int connects = 20;
    std::vector<std::optional<cp::expected<cp::Socket, cp::NetError>>> got(connects);
    std::vector<std::chrono::milliseconds> took(connects);
    {
      std::vector<std::jthread> callers;
      for (int i = 0; i < connects; ++i)
        callers.emplace_back([&, i] {
          const auto start = std::chrono::steady_clock::now();
          got[i].emplace(client.connect(*cp::HostPort::from("shared.test", 7000)));
          took[i] = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        });
    }
    const auto use = cp::SystemResolver::helper_threads();
    CHECK(use.joined - before.joined >= connects * 2 - 2);
    for (int i = 0; i < connects; ++i) {
      REQUIRE(got[i]);
      REQUIRE_FALSE(got[i]->has_value());
      CHECK(got[i]->error() == cp::Errc::try_again);
      CHECK(took[i] < 1s);
    }
  }
  CHECK(helpers_finished(threads_before));
  CHECK(test_support::open_fd_count() == fds_before);
}

namespace {
// Asks for a stop as soon as an attempt connects: the user's hook re-enters the operation.
struct StopOnConnect {
  std::stop_source* stop;
  int* calls;
  void operator()(const cp::AttemptEvent& e) const {
    ++*calls;
    if (e.connected()) stop->request_stop();
  }
};
}  // namespace

// An observer that calls request_stop() when the race is won: the stop callback takes the
// operation's lock, so the observer must be called with no lock held (it once spun the io thread
// at 100 % for good). The connect completes (the stop came after it won), nothing is lent after.
TEST_CASE("asio: an observer that stops the operation when the race is won does not deadlock",
          "[.][netns][race][hooks]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(dual_test_hosts());
  auto v6 = listen_on_ipv6_loopback();
  REQUIRE(v6.port != 0);
  const auto fds = test_support::open_fd_count();
  {
    std::stop_source stop;
    int calls = 0;
    cp::FixedPortRotation rotation{cp::PortRange{47630, 47639}, {.use_census = false}};
    cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, cp::NativeSystem, StopOnConnect> client{
        {.bind = rotation, .options = {.connect_timeout = 5s}, .observer = StopOnConnect{&stop, &calls}}};
    asio::io_context io;
    std::optional<Result> got;
    cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::from("dual.test", v6.port), stop.get_token(),
                            [&](Result r) { got.emplace(std::move(r)); });
    std::thread runner([&] { io.run_for(5s); });  // a deadlock would hold it for its 5 s
    const auto start = std::chrono::steady_clock::now();
    runner.join();
    CHECK(std::chrono::steady_clock::now() - start < 3s);
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK(calls == 1);
    CHECK(stop.stop_requested());
    CHECK(rotation.snapshot().in_use == 1);
    (*got)->close_reset();
    CHECK(rotation.snapshot().in_use == 0);
  }
  CHECK(test_support::open_fd_count() == fds);
}
