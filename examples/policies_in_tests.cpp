// policies_in_tests: how you unit-test code that connects, with no network and no waiting.
//
// Your application has its own connector type. In tests, swap the system for FakeSystem (script
// what each syscall returns, count descriptors) and the connector's one clock for a ManualTimer
// (ConnectorOptions::timer: sleeps return at once and are recorded, and the policies keep time on
// it too). Everything below is what a test in your suite would assert.
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

// Your production type, with the system as a parameter so tests can swap it.
template <class System = cp::NativeSystem>
using LoginClient = cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy, System>;

#define EXPECT(cond)                                                                                                   \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      std::printf("FAILED: %s (line %d)\n", #cond, __LINE__);                                                          \
      return 1;                                                                                                        \
    }                                                                                                                  \
  } while (false)

int main() {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);  // what "the kernel" says about the rotation's ports

  // 1. The server refuses three times, then accepts: waits of 100, 200 and 400 ms, exactly.
  sys.fail(cp::Call::connect, std::errc::connection_refused, 3);
  LoginClient<cp::FakeSystem> client{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.census = &census}},
       .retry = cp::ExponentialRetry{{.initial = 100ms, .max_attempts = 5, .jitter = cp::Jitter::none}},
       .system = sys,
       .options = {.timer = &timer}}};  // the connector's one clock: its waits, the rotation's rests, the deadline
  {
    auto socket = client.connect(cp::Endpoint::loopback_v4(7000));
    EXPECT(socket.has_value());
    EXPECT(timer.sleeps() == (std::vector<cp::Timer::duration>{100ms, 200ms, 400ms}));
    EXPECT(sys.count(cp::Call::connect) == 4);
    EXPECT(sys.open_handles() == 1);
  }
  EXPECT(sys.open_handles() == 0);  // the socket closed, and nothing leaked on the failing paths

  // 2. On Windows the port collision shows at connect() as 10048: the rotation moves on at once.
  sys.script(cp::Call::connect, {cp::make_winsock_error(10048)});
  auto socket = client.connect(cp::Endpoint::loopback_v4(7000));
  EXPECT(socket.has_value());
  EXPECT(timer.sleeps().size() == 3);  // no new wait: a rebind, not a retry
  EXPECT(sys.bad_closes() == 0);

  // 3. A restart: "the kernel" says all ten ports are still in TIME_WAIT from the last run, the
  //    soonest freeing in 2 s. A new rotation asks before its first bind, so it waits exactly
  //    those 2 s and binds once, where a rotation without a census would fail ten binds first.
  cp::FakeCensus after_restart(timer);
  const auto server = cp::Endpoint::loopback_v4(7000);
  for (int port = 40000; port <= 40009; ++port)
    after_restart.add_time_wait(cp::Endpoint::loopback_v4(static_cast<std::uint16_t>(port)), server,
                                port == 40004 ? 2s : 40s);
  LoginClient<cp::FakeSystem> restarted{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40009}, {.census = &after_restart}},
       .retry = cp::ExponentialRetry{{.initial = 100ms, .max_attempts = 5, .jitter = cp::Jitter::none}},
       .system = sys,
       .options = {.timer = &timer}}};  // the connector's one clock: its waits, the rotation's rests, the deadline
  const auto binds_before = sys.count(cp::Call::bind);
  auto again = restarted.connect(server);
  EXPECT(again.has_value());
  EXPECT(timer.sleeps().back() == 2s);                      // the exact wait, not a backoff
  EXPECT(sys.count(cp::Call::bind) == binds_before + 1);    // one bind, no failed ones
  EXPECT(again->local_endpoint().value().port() == 40004);  // the port that freed first

  std::printf("policies_in_tests: all expectations held (%zu fake syscalls, %zu virtual waits)\n", sys.calls().size(),
              timer.sleeps().size());
  return 0;
}
