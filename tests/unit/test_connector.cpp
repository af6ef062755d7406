// The Connector's loop with the fake system and a manual timer: the calls it makes, the actions
// it takes, the errors it returns, and that every path closes what it opened.
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>
#include "events.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using test_support::Recorder;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using D = cp::Timer::duration;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);

std::vector<cp::Call> kinds(const cp::FakeSystem& sys) {
  std::vector<cp::Call> k;
  for (const auto& c : sys.calls()) k.push_back(c.call);
  return k;
}

template <class Bind, class Retry = cp::NoRetry, class Error = cp::DefaultErrorPolicy>
using FakeConnector = cp::Connector<Bind, Retry, Error, cp::FakeSystem>;
}  // namespace

TEST_CASE("connector: NoBind makes socket, connect, blocking again, nothing else", "[connector]") {
  cp::FakeSystem sys;
  FakeConnector<cp::NoBind> c{{.system = sys}};
  {
    auto s = c.connect(server);
    REQUIRE(s);
    CHECK(s->is_open());
    CHECK(s->remote_endpoint().value() == server);
    CHECK(kinds(sys) ==
          std::vector{cp::Call::open_socket, cp::Call::connect, cp::Call::set_nonblocking, cp::Call::remote_endpoint});
    CHECK(sys.calls()[0].value == 1);  // opened non-blocking
    CHECK(sys.calls()[2].value == 0);  // handed back blocking
    CHECK(sys.open_handles() == 1);
  }
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("connector: EphemeralBind asks IP_BIND_ADDRESS_NO_PORT, binds port 0, and goes on without it",
          "[connector]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::set_option, std::errc::no_protocol_option);  // an old kernel
  FakeConnector<cp::EphemeralBind> c{{.bind = cp::EphemeralBind{}, .system = sys}};
  auto s = c.connect(server);
  REQUIRE(s);
  const auto calls = sys.calls();
  CHECK(kinds(sys) == std::vector{cp::Call::open_socket, cp::Call::set_option, cp::Call::bind, cp::Call::connect,
                                  cp::Call::set_nonblocking});
  CHECK(calls[1].option == cp::SocketOption::bind_address_no_port);
  CHECK(calls[2].endpoint == cp::Endpoint::any_v4(0));
}

TEST_CASE("connector: a pending connect is waited for, then asked for its result", "[connector]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::connect, std::errc::operation_in_progress);
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> c{
      {.system = sys, .options = {.blocking_result = false}}};
  auto s = c.connect(server);
  REQUIRE(s);
  CHECK(kinds(sys) ==
        std::vector{cp::Call::open_socket, cp::Call::connect, cp::Call::wait_writable, cp::Call::pending_error});
}

TEST_CASE("connector: refused connections back off exactly and give up after max_attempts", "[connector][retry]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::connection_refused, 100);
  FakeConnector<cp::NoBind, cp::ExponentialRetry> c{
      {.retry = cp::ExponentialRetry{{.initial = 50ms, .max_attempts = 4, .jitter = cp::Jitter::none}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::connection_refused);
  CHECK(s.error().attempts() == 4);
  CHECK(s.error().step() == cp::Step::connect);
  CHECK(s.error().remote_endpoint() == server);
  CHECK_THAT(s.error().message(), Contains("after 4 attempts"));
  CHECK_THAT(s.error().message(), Contains("gave up: the retry policy's max_attempts was reached"));
  CHECK(timer.sleeps() == std::vector<D>{50ms, 100ms, 200ms});
  CHECK(sys.count(cp::Call::open_socket) == 4);
  CHECK(sys.open_handles() == 0);
  CHECK(sys.bad_closes() == 0);
}

TEST_CASE("connector: FixedPort in TIME_WAIT fails at bind, naming the port and the fix", "[connector][seed]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::bind, std::errc::address_in_use, 100);
  FakeConnector<cp::FixedPort, cp::FixedDelayRetry> c{{.bind = cp::FixedPort{40000},
                                                       .retry = cp::FixedDelayRetry{{.delay = 1s, .max_attempts = 3}},
                                                       .system = sys,
                                                       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::local_port_busy);
  CHECK(s.error().step() == cp::Step::bind);
  CHECK(s.error().local_endpoint() == cp::Endpoint::any_v4(40000));
  CHECK_THAT(s.error().message(), Contains("bind 0.0.0.0:40000 -> 127.0.0.1:7000: local port busy (EADDRINUSE"));
  CHECK_THAT(s.error().message(), Contains("port 40000"));
  CHECK_THAT(s.error().message(), Contains("TIME_WAIT"));
  CHECK(timer.sleeps() == std::vector<D>{1s, 1s});
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("connector: a rotation moves to the next port at once when bind says busy", "[connector][rotation]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.script(cp::Call::bind, {cp::make_system_error(EADDRINUSE), cp::make_system_error(EADDRINUSE), {}});
  FakeConnector<cp::FixedPortRotation> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.seed = 5, .use_census = false}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE(s);
  std::vector<std::uint16_t> bound;
  for (const auto& call : sys.calls())
    if (call.call == cp::Call::bind) bound.push_back(call.endpoint->port());
  REQUIRE(bound.size() == 3);
  CHECK(bound[0] != bound[1]);
  CHECK(bound[1] != bound[2]);
  CHECK(timer.sleeps().empty());  // rebinding does not wait
  CHECK(s->has_lease());
  const auto snap = c.bind_policy().snapshot();
  CHECK(snap.in_use == 1);
  CHECK(snap.cooling == 2);  // the two busy ports rest
  CHECK(sys.open_handles() == 1);
}

TEST_CASE("connector: a rotation also moves on when connect says the address pair is taken",
          "[connector][rotation][windows]") {
  for (auto code : {cp::make_system_error(EADDRNOTAVAIL), cp::make_winsock_error(10048)}) {
    INFO(code.message());
    cp::FakeSystem sys;
    cp::ManualTimer timer;
    sys.script(cp::Call::connect, {code});
    FakeConnector<cp::FixedPortRotation> c{
        {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.use_census = false}},
         .system = sys,
         .options = {.timer = &timer}}};
    auto s = c.connect(server);
    REQUIRE(s);
    CHECK(sys.count(cp::Call::bind) == 2);
    CHECK(sys.count(cp::Call::connect) == 2);
    CHECK(sys.open_handles() == 1);
  }
}

TEST_CASE("connector: when every port cools, it waits exactly until the first frees", "[connector][rotation]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  FakeConnector<cp::FixedPortRotation, cp::ExponentialRetry> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40001}, {.cooldown = 30s, .use_census = false}},
       .retry = cp::ExponentialRetry{{.initial = 10ms, .max_attempts = 3}},
       .system = sys,
       .options = {.timer = &timer}}};
  for (int i = 0; i < 2; ++i) {
    auto s = c.connect(server);
    REQUIRE(s);
    timer.advance(1s);
  }  // both closed: 30 s cooldowns, the first ends 29 s from now
  auto third = c.connect(server);
  REQUIRE(third);
  CHECK(timer.sleeps() == std::vector<D>{29s});
  CHECK(sys.count(cp::Call::bind) == 3);  // no bind was wasted on a cooling port
}

TEST_CASE("connector: every port cooling and no retry gives local_ports_exhausted at once", "[connector][rotation]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::bind, std::errc::address_in_use, 10);
  FakeConnector<cp::FixedPortRotation> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40003}, {.use_census = false}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK(s.error().retry_after() == std::chrono::milliseconds(cp::platform_time_wait));
  CHECK(sys.count(cp::Call::bind) == 4);  // each port tried once, then no spinning
  // 4 binds are 4 attempts; the plan that found no port made no syscall and is not one.
  CHECK(s.error().attempts() == 4);
  CHECK_THAT(s.error().message(), Contains("after 4 attempts"));
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("connector: endpoints are tried in order, refused moves to the next", "[connector]") {
  cp::FakeSystem sys;
  sys.script(cp::Call::connect, {cp::make_system_error(ECONNREFUSED), cp::make_system_error(ENETUNREACH), {}});
  const std::vector<cp::Endpoint> endpoints{cp::Endpoint::loopback_v6(1), cp::Endpoint::loopback_v4(2),
                                            cp::Endpoint::loopback_v4(3)};
  FakeConnector<cp::NoBind> c{{.system = sys}};
  auto s = c.connect(std::span<const cp::Endpoint>(endpoints));
  REQUIRE(s);
  std::vector<cp::Endpoint> tried;
  for (const auto& call : sys.calls())
    if (call.call == cp::Call::connect) tried.push_back(*call.endpoint);
  CHECK(tried == endpoints);
  CHECK(s->remote_endpoint().value() == endpoints[2]);
  CHECK(sys.open_handles() == 1);
}

TEST_CASE("connector: a stop requested before connect opens nothing", "[connector][cancel]") {
  cp::FakeSystem sys;
  std::stop_source stop;
  stop.request_stop();
  FakeConnector<cp::NoBind> c{{.system = sys}};
  auto s = c.connect(server, stop.get_token());
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::cancelled);
  CHECK(sys.opened() == 0);
}

TEST_CASE("connector: a stop during a retry wait ends the connect with cancelled", "[connector][cancel]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  std::stop_source stop;
  timer.on_sleep([&](D) { stop.request_stop(); });
  sys.fail(cp::Call::connect, std::errc::connection_refused, 10);
  FakeConnector<cp::NoBind, cp::ExponentialRetry> c{
      {.retry = cp::ExponentialRetry{{}}, .system = sys, .options = {.timer = &timer}}};
  auto s = c.connect(server, stop.get_token());
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::cancelled);
  CHECK(s.error().attempts() == 1);
  CHECK_THAT(s.error().message(),
             Contains("while waiting to retry after: connect -> 127.0.0.1:7000: connection refused"));
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("connector: a connect that never answers times out at the wait step", "[connector]") {
  cp::FakeSystem sys;
  sys.fail(cp::Call::connect, std::errc::operation_in_progress);
  sys.time_out();
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> c{
      {.system = sys, .options = {.connect_timeout = 250ms}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::timed_out);
  CHECK(s.error().step() == cp::Step::wait);
  CHECK_THAT(s.error().message(), Contains("no answer within 250 ms"));
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("connector: the retry deadline bounds the connect wait", "[connector][retry]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::operation_in_progress);
  sys.time_out();
  FakeConnector<cp::NoBind, cp::ExponentialRetry> c{
      {.retry = cp::ExponentialRetry{{.initial = 1s, .max_attempts = 1, .deadline = 300ms}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().code() == cp::LibraryError::deadline_exceeded);
  CHECK(s.error().condition() == cp::Errc::timed_out);
}

TEST_CASE("connector: the observer sees each attempt, its action and its delay", "[connector][observer]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.script(cp::Call::bind, {cp::make_system_error(EADDRINUSE)});
  sys.script(cp::Call::connect, {cp::make_system_error(ECONNREFUSED)});
  std::vector<cp::AttemptEvent> events;
  cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.use_census = false}},
       .retry = cp::FixedDelayRetry{{.delay = 70ms}},
       .system = sys,
       .options = {.timer = &timer},
       .observer = Recorder{&events}}};
  REQUIRE(c.connect(server));
  REQUIRE(events.size() == 3);
  CHECK(events[0].step == cp::Step::bind);
  CHECK(events[0].action == cp::Action::rebind);
  CHECK(events[0].local.has_value());
  CHECK(events[1].error == cp::Errc::connection_refused);
  CHECK(events[1].action == cp::Action::retry);
  CHECK(events[1].delay == D(70ms));
  CHECK(events[2].connected());
  CHECK(events[2].attempt == 3);
  CHECK(events[2].local.has_value());
}

TEST_CASE("connector: events own what they hold, so an observer may keep them", "[connector][observer]") {
  cp::FakeSystem sys;
  sys.script(cp::Call::connect, {cp::make_winsock_error(10048)});
  std::vector<cp::AttemptEvent> events;
  cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder> c{
      {.system = sys, .observer = Recorder{&events}}};
  {
    const cp::Endpoint short_lived = cp::Endpoint::loopback_v4(7123);  // gone before the checks
    REQUIRE_FALSE(c.connect(short_lived));
  }
  const cp::Endpoint other = cp::Endpoint::loopback_v4(9);  // reuses the stack where it stood
  REQUIRE(events.size() == 1);
  CHECK(events[0].remote == cp::Endpoint::loopback_v4(7123));
  CHECK(events[0].remote != other);
  // The condition, as NetError::condition() says: 10048 at connect from a kernel-chosen port.
  CHECK(events[0].condition == cp::Errc::local_ports_exhausted);
  CHECK(events[0].error == cp::make_winsock_error(10048));
  static_assert(std::is_copy_assignable_v<cp::AttemptEvent>, "no reference members");
}

TEST_CASE("connector: no endpoints is invalid_argument", "[connector]") {
  cp::FakeSystem sys;
  FakeConnector<cp::NoBind> c{{.system = sys}};
  auto s = c.connect(std::span<const cp::Endpoint>{});
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::invalid_argument);
}

TEST_CASE("connector: the socket returns its rotation port when it closes", "[connector][rotation]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  FakeConnector<cp::FixedPortRotation> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40000}, {.cooldown = 5s, .use_census = false}},
       .system = sys,
       .options = {.timer = &timer}}};
  {
    auto s = c.connect(server);
    REQUIRE(s);
    CHECK(c.bind_policy().snapshot().in_use == 1);
  }
  CHECK(c.bind_policy().snapshot().cooling == 1);
  auto reset = [&] {
    timer.advance(5s);
    auto s = c.connect(server);
    REQUIRE(s);
    CHECK_FALSE(s->close_reset());
    CHECK(sys.option_value(s->native_handle(), cp::SocketOption::linger_reset) == std::nullopt);  // closed
  };
  reset();
  CHECK(c.bind_policy().snapshot().ready == 1);  // a reset close leaves no TIME_WAIT to wait for
}

// Torture: every call of the loop fails in turn with each plausible errno. The Connector must
// take the action the error policy gives, return a NetError naming the failing step, and leave
// no handle open.
TEST_CASE("connector torture: each call failing with each errno", "[connector][torture]") {
  struct Case {
    cp::Call call;
    cp::Step step;
  };
  const Case calls[] = {{cp::Call::open_socket, cp::Step::socket},
                        {cp::Call::set_option, cp::Step::set_option},
                        {cp::Call::bind, cp::Step::bind},
                        {cp::Call::connect, cp::Step::connect},
                        {cp::Call::wait_writable, cp::Step::wait},
                        {cp::Call::pending_error, cp::Step::connect},
                        {cp::Call::set_nonblocking, cp::Step::set_option}};
  const int errnos[] = {EADDRINUSE, EADDRNOTAVAIL, ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH,
                        EACCES,     EPERM,         EINVAL,       EMFILE,    ENFILE,      ENOBUFS,
                        ENOMEM,     EAFNOSUPPORT,  ECONNRESET,   EINTR,     EBADF,       ENOPROTOOPT};
  int cases = 0;
  for (const auto& c : calls) {
    for (int e : errnos) {
      INFO(std::string(cp::to_string(c.call)) << " fails with errno " << e);
      cp::FakeSystem sys;
      cp::ManualTimer timer;
      if (c.call == cp::Call::wait_writable || c.call == cp::Call::pending_error)
        sys.fail(cp::Call::connect, std::errc::operation_in_progress, 1);
      sys.fail(c.call, cp::make_system_error(e), 1);  // once; the retry (if any) succeeds
      std::vector<cp::AttemptEvent> events;
      cp::Connector<cp::FixedPortRotation, cp::FixedDelayRetry, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder> conn{
          {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40003}, {.reuse_address = true, .use_census = false}},
           .retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 2}},
           .system = sys,
           .options = {.timer = &timer},
           .observer = Recorder{&events}}};
      {
        auto s = conn.connect(server);
        REQUIRE_FALSE(events.empty());
        if (c.call == cp::Call::wait_writable && e == EINTR) {
          // An interrupted wait is not a failure: the Connector waits again within its budget.
          REQUIRE(s);
          CHECK(events.size() == 1);
          CHECK(sys.count(cp::Call::wait_writable) == 2);
          ++cases;
          continue;
        }
        const auto& first = events.front();
        const cp::NetError expected_error =
            cp::NetError(c.step, cp::make_system_error(e)).with_local(cp::Endpoint::any_v4(40000));
        const cp::Action action = cp::DefaultErrorPolicy{}.classify(cp::Failure{expected_error, true, false});
        CHECK_FALSE(first.connected());
        CHECK(first.step == c.step);
        CHECK(first.error == cp::make_system_error(e));
        CHECK(first.action == action);
        if (action == cp::Action::give_up) {
          REQUIRE_FALSE(s);
          CHECK(s.error().step() == c.step);
          CHECK(s.error().code() == cp::make_system_error(e));
          CHECK(s.error().remote_endpoint() == server);
          CHECK(s.error().attempts() == 1);
          CHECK(sys.open_handles() == 0);
        } else {
          REQUIRE(s);  // the second try succeeds
          CHECK(events.back().connected());
          CHECK(sys.open_handles() == 1);
        }
      }
      CHECK(sys.open_handles() == 0);
      CHECK(sys.bad_closes() == 0);
      CHECK(conn.bind_policy().snapshot().in_use == 0);
      ++cases;
    }
  }
  CHECK(cases == 7 * 18);
}
