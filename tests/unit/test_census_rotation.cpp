// FixedPortRotation with a census: what it does with what "the kernel" says (FakeCensus on a
// ManualTimer, FakeSystem for the Connector cases). No sockets, no sleeping.
#include <catch2/catch.hpp>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
cp::Endpoint local(int port) { return cp::Endpoint::loopback_v4(static_cast<std::uint16_t>(port)); }

std::uint16_t take(cp::FixedPortRotation& r) {
  auto plan = r.plan(server);
  REQUIRE(plan);
  return plan->local->port();
}
// A job on another thread, to run inside a census: if the rotation held its lock there, the job
// would block until the census ends, and finished_in_time() says false (rather than the test
// deadlocking on its own thread). Joined when it goes out of scope.
class OtherThread {
 public:
  explicit OtherThread(std::function<void()> job)
      : task_(std::move(job)), done_(task_.get_future()), thread_(std::move(task_)) {}
  OtherThread(const OtherThread&) = delete;
  OtherThread& operator=(const OtherThread&) = delete;
  ~OtherThread() { thread_.join(); }
  bool finished_in_time() { return done_.wait_for(5s) == std::future_status::ready; }

 private:
  std::packaged_task<void()> task_;
  std::future<void> done_;
  std::thread thread_;
};
}  // namespace

TEST_CASE("a fresh rotation asks the census once and skips the ports in TIME_WAIT", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.set_time_wait_slack(500ms);
  for (int port = 40000; port <= 40007; ++port) census.add_time_wait(local(port), server, 30s + (port - 40000) * 1s);
  cp::FixedPortRotation r{cp::PortRange{40000, 40009}, {.seed = 4, .census = &census}};
  r.use_clock(timer);
  std::set<std::uint16_t> taken{take(r), take(r)};
  CHECK(taken == std::set<std::uint16_t>{40008, 40009});
  CHECK(census.surveys() == 1);  // at start; the picks were of ports the kernel showed free

  auto none = r.plan(server);
  REQUIRE_FALSE(none);
  CHECK(none.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK_FALSE(none.error().retry_after());  // two ports are lent: one may come back before 40000 frees
  CHECK_THAT(
      none.error().message(),
      Contains("port 40000 frees in 30.5 s (the kernel's TIME_WAIT timer)"));  // its TIME_WAIT and the timer's slack

  timer.advance(30s + 500ms);
  CHECK(take(r) == 40000);  // exactly when it frees, not a moment later
}

TEST_CASE("with every port in TIME_WAIT the Connector waits exactly once and binds once", "[census]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  for (int port = 40000; port <= 40003; ++port) census.add_time_wait(local(port), server, port == 40002 ? 7s : 50s);
  cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy, cp::FakeSystem> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40003}, {.census = &census}},
       .retry = cp::ExponentialRetry{{.initial = 100ms, .max_attempts = 3}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE(s);
  CHECK(timer.sleeps() == std::vector<cp::Timer::duration>{7s});  // no backoff, no jitter: the exact wait
  CHECK(sys.count(cp::Call::bind) == 1);
  CHECK(s->local_endpoint().value().port() == 40002);
}

TEST_CASE("the exact wait respects the retry deadline", "[census]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.add_time_wait(local(40000), server, 50s);
  cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy, cp::FakeSystem> c{
      {.bind = cp::FixedPortRotation{cp::PortRange{40000, 40000}, {.census = &census}},
       .retry = cp::ExponentialRetry{{.max_attempts = 3, .deadline = 10s}},
       .system = sys,
       .options = {.timer = &timer}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK_THAT(s.error().message(), Contains("deadline"));
  CHECK(timer.sleeps().empty());  // it did not sleep 50 s past a 10 s deadline
  CHECK(sys.count(cp::Call::bind) == 0);
}

TEST_CASE("an assumed TIME_WAIT is checked with the kernel before the port is written off", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.seed = 2, .census = &census}};
  r.use_clock(timer);
  // Both ports used and closed normally: the rotation assumes 60 s of TIME_WAIT for each.
  for (int i = 0; i < 2; ++i) {
    auto plan = r.plan(server);
    REQUIRE(plan);
    const auto port = plan->local->port();
    plan->lease->on_close(cp::CloseKind::normal);
    // The kernel: the first really is in TIME_WAIT (20 s left); the second is not (the server
    // closed first, so the TIME_WAIT is the server's).
    if (i == 0) census.add_time_wait(local(port), server, 20s);
  }
  timer.advance(10ms);  // censuses are at least 10 ms apart unless a guess just proved wrong
  const auto before = census.surveys();
  auto plan = r.plan(server);  // every port looks cooling: ask
  REQUIRE(plan);
  CHECK(census.surveys() == before + 1);
  const auto snap = r.snapshot();
  CHECK(snap.cooling == 1);
  REQUIRE(snap.next_ready_in);
  CHECK(*snap.next_ready_in == 20s - 10ms);
}

TEST_CASE("a port whose assumed rest ran out is verified, and kept back while the kernel still holds it", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.census = &census}};
  r.use_clock(timer);
  auto plan = r.plan(server);
  REQUIRE(plan);
  plan->lease->on_close(cp::CloseKind::normal);
  // The TIME_WAIT began late (the server was slow to close): 3 s left when our 60 s guess ends.
  timer.advance(cp::platform_time_wait);
  census.add_time_wait(local(40000), server, 3s);
  auto again = r.plan(server);
  REQUIRE_FALSE(again);
  CHECK(*again.error().retry_after() == 3s);
  timer.advance(3s);
  CHECK(r.plan(server));
}

TEST_CASE("a failed bind makes the rotation ask the kernel at once", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40009}, {.seed = 9, .census = &census}};
  r.use_clock(timer);
  auto plan = r.plan(server);
  REQUIRE(plan);
  CHECK(census.surveys() == 1);
  // Meanwhile another program took all ten ports; ours fails for being busy.
  for (int port = 40000; port <= 40009; ++port)
    census.add(local(port), cp::Endpoint::loopback_v4(80), cp::TcpState::established);
  r.failed(*plan, cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)).with_local(*plan->local));
  auto next = r.plan(server);  // same instant: the gap between surveys does not apply
  CHECK(census.surveys() == 2);
  REQUIRE_FALSE(next);
  CHECK_THAT(next.error().message(), Contains("held by another socket"));
  // Ports held by other sockets are looked at again after a second.
  census.clear();
  timer.advance(1s);
  CHECK(r.plan(server));
}

TEST_CASE("a cooldown you set is a floor the census may lengthen but not shorten", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.cooldown = 5s, .census = &census}};
  r.use_clock(timer);
  auto plan = r.plan(server);
  REQUIRE(plan);
  plan->lease->on_close(cp::CloseKind::normal);
  auto early = r.plan(server);  // the kernel holds nothing, yet 5 s were asked for
  REQUIRE_FALSE(early);
  CHECK(*early.error().retry_after() == 5s);
  CHECK_THAT(early.error().message(), Contains("the cooldown you set"));
  timer.advance(5s);
  census.add_time_wait(local(40000), server, 4s);  // but the kernel may hold it longer
  plan = r.plan(server);
  REQUIRE(plan);  // not guessed: offered without a census (the bind would tell)
  r.failed(*plan, cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)).with_local(*plan->local));
  auto later = r.plan(server);
  REQUIRE_FALSE(later);
  CHECK(*later.error().retry_after() == 5s);  // max(the floor again, the kernel's 4 s)
}

TEST_CASE("with reuse_address, TIME_WAIT blocks a port only when TCP timestamps are off", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.add_time_wait(local(40000), server, 30s);
  SECTION("timestamps on: SO_REUSEADDR reuses it at once") {
    cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.reuse_address = true, .census = &census}};
    r.use_clock(timer);
    auto plan = r.plan(server);
    REQUIRE(plan);
    plan->lease->on_close(cp::CloseKind::normal);
    CHECK(r.plan(server));  // and a close needs no rest either
  }
  SECTION("timestamps off: connect would fail EADDRNOTAVAIL, so wait for the kernel") {
    census.set_tcp_timestamps(false);
    cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.reuse_address = true, .census = &census}};
    r.use_clock(timer);
    auto plan = r.plan(server);
    REQUIRE(plan);
    CHECK(plan->local->port() == 40001);
    plan->lease->on_close(cp::CloseKind::normal);  // now 40001 rests too (an assumed TIME_WAIT)
    auto none = r.plan(server);
    REQUIRE_FALSE(none);
    CHECK(*none.error().retry_after() == 30s);
  }
}

TEST_CASE("a census that fails leaves the rotation on its memory, says why, and is not hammered", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.fail_with(std::make_error_code(std::errc::permission_denied));
  cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.census = &census}};
  r.use_clock(timer);
  auto plan = r.plan(server);
  REQUIRE(plan);  // memory says the port is free
  CHECK_THAT(r.snapshot().census_problem, Contains("FakeCensus::fail_with"));
  plan->lease->on_close(cp::CloseKind::normal);
  for (int i = 0; i < 5; ++i) CHECK_FALSE(r.plan(server));
  CHECK(census.surveys() == 1);  // not again within a second of the failure
  auto none = r.plan(server);
  CHECK_THAT(none.error().message(), Contains("the kernel census failed"));
  CHECK(*none.error().retry_after() == std::chrono::milliseconds(cp::platform_time_wait));
  timer.advance(1s);
  CHECK_FALSE(r.plan(server));
  CHECK(census.surveys() == 2);
}

TEST_CASE("use_census = false never asks", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.add_time_wait(local(40000), server, 30s);
  cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.use_census = false, .census = &census}};
  r.use_clock(timer);
  CHECK(take(r) == 40000);  // memory alone: the bind would have to find out
  CHECK(census.surveys() == 0);
}

TEST_CASE("the census's other states hold a port, sockets of other addresses do not", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.add(local(40000), cp::Endpoint{}, cp::TcpState::listen);
  census.add(cp::Endpoint::any_v4(40001), cp::Endpoint{}, cp::TcpState::fin_wait2);
  census.add(local(40002), server, cp::TcpState::close_wait);
  census.add(cp::Endpoint::ipv4({127, 0, 0, 9}, 40003), server, cp::TcpState::established);
  // A rotation bound to 127.0.0.2: 127.0.0.9's socket does not collide with it; any-address does.
  cp::FixedPortRotation r{cp::PortRange{40000, 40003},
                          {.source = cp::Endpoint::ipv4({127, 0, 0, 2}, 0), .census = &census}};
  r.use_clock(timer);
  std::set<std::uint16_t> taken;
  while (auto plan = r.plan(server)) taken.insert(plan->local->port());
  CHECK(taken == std::set<std::uint16_t>{40000, 40002, 40003});  // 127.0.0.1 is not 127.0.0.2 either
}

TEST_CASE("a census runs without the rotation's lock: sockets close and snapshot() answers meanwhile", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.seed = 3, .census = &census}};
  r.use_clock(timer);
  auto held = r.plan(server);  // the first census, at start
  REQUIRE(held);
  bool closed_meanwhile = false, snapshot_meanwhile = false;
  std::size_t surveys_seen = 0;
  std::optional<OtherThread> snapshot_job, close_job;
  census.while_surveying([&] {
    snapshot_job.emplace([&] { surveys_seen = r.snapshot().surveys; });
    snapshot_meanwhile = snapshot_job->finished_in_time();
    close_job.emplace([&] { held->lease->on_close(cp::CloseKind::reset); });
    closed_meanwhile = close_job->finished_in_time();
  });
  r.plan(server).value().lease->on_close(cp::CloseKind::normal);  // 40001 now rests (assumed TIME_WAIT)
  timer.advance(10ms);
  auto again = r.plan(server);  // 40000 is back (reset: no rest); 40001's assumed rest is verified
  REQUIRE(again);
  CHECK(census.surveys() == 2);
  CHECK(snapshot_meanwhile);
  CHECK(surveys_seen == 2);  // the census in flight is already counted
  CHECK(closed_meanwhile);
}

TEST_CASE("a port that comes back while a census runs keeps its rest: the census may predate it", "[census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.seed = 5, .census = &census}};
  r.use_clock(timer);
  auto a = r.plan(server);
  auto b = r.plan(server);
  REQUIRE(a);
  REQUIRE(b);
  const auto port_a = a->local->port();
  a->lease->on_close(cp::CloseKind::normal);  // assumed TIME_WAIT; the kernel (census) has none
  timer.advance(10ms);
  // The census's answer is taken, then b closes normally: its TIME_WAIT is newer than the answer.
  std::optional<OtherThread> close_job;
  bool closed_meanwhile = false;
  census.while_surveying([&] {
    close_job.emplace([&] { b->lease->on_close(cp::CloseKind::normal); });
    closed_meanwhile = close_job->finished_in_time();
  });
  auto next = r.plan(server);  // nothing ready: ask the kernel, which frees a's port
  REQUIRE(next);
  REQUIRE(closed_meanwhile);
  CHECK(next->local->port() == port_a);
  const auto snap = r.snapshot();
  CHECK(snap.cooling == 1);  // b's port was not freed by an answer older than its close
  REQUIRE(snap.next_ready_in);
  CHECK(*snap.next_ready_in == std::chrono::duration_cast<std::chrono::milliseconds>(cp::platform_time_wait));
}

// A census that only knows how to survey: look_up is PortCensus's default.
struct SurveyOnly final : cp::PortCensus {
  cp::FakeCensus* fake;
  explicit SurveyOnly(cp::FakeCensus& f) : fake(&f) {}
  cp::expected<cp::Census, cp::NetError> survey(cp::PortRange range) override { return fake->survey(range); }
};

TEST_CASE("look_up's default answers from a survey: only the pairs asked for, both ends matching",
          "[census][look_up]") {
  cp::ManualTimer timer;
  cp::FakeCensus fake(timer);
  SurveyOnly census(fake);
  const auto other_server = cp::Endpoint::loopback_v4(7001);
  fake.add_time_wait(local(40001), server, 30s);
  fake.add_time_wait(local(40002), other_server, 20s);  // same port as asked, other remote
  fake.add(local(40003), server, cp::TcpState::established);
  fake.add_time_wait(local(40009), server, 10s);  // not asked
  const std::vector<cp::SocketPair> asked{{local(40001), server}, {local(40002), server}, {local(40003), server}};
  auto answer = census.look_up(asked);
  REQUIRE(answer);
  REQUIRE(answer->uses.size() == 2);
  CHECK(answer->uses[0].local == local(40001));
  CHECK(*answer->uses[0].time_wait_left == 30s);
  CHECK(answer->uses[1].local == local(40003));
  CHECK(answer->uses[1].state == cp::TcpState::established);
  CHECK(census.look_up({})->uses.empty());
  CHECK(fake.surveys() == 1);  // the default surveyed once (none for nothing asked)
  CHECK(fake.look_ups() == 0);
}

TEST_CASE("a port the rotation closed itself is checked with a look_up of that connection, not a survey",
          "[census][look_up]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.set_time_wait_slack(500ms);
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.seed = 6, .census = &census}};
  r.use_clock(timer);
  auto a = r.plan(server);  // the census at start: a survey
  auto b = r.plan(server);
  REQUIRE(a);
  REQUIRE(b);
  const auto port_a = a->local->port(), port_b = b->local->port();
  // Both close normally, as a Socket does: first the local address it used, then the close.
  a->lease->closing_from(local(port_a));
  a->lease->on_close(cp::CloseKind::normal);
  b->lease->closing_from(local(port_b));
  b->lease->on_close(cp::CloseKind::normal);
  // The kernel: a's connection is in TIME_WAIT for 20 s more; b's left none (the server closed first).
  census.add_time_wait(local(port_a), server, 20s);
  census.add_time_wait(local(port_b), cp::Endpoint::loopback_v4(7001), 40s);  // b's port, another connection
  timer.advance(10ms);
  auto next = r.plan(server);  // every port looks cooling: ask about exactly those two connections
  REQUIRE(next);
  CHECK(next->local->port() == port_b);
  CHECK(census.surveys() == 1);  // only the one at start
  CHECK(census.look_ups() == 1);
  const auto snap = r.snapshot();
  CHECK(snap.look_ups == 1);
  CHECK(snap.cooling == 1);
  REQUIRE(snap.next_ready_in);
  CHECK(*snap.next_ready_in == 20s - 10ms + 500ms);  // the kernel's timer and its slack

  // Without the local address (a lease released, or a socket that never said): a survey, as before.
  next->lease->on_close(cp::CloseKind::normal);
  census.remove(port_b);
  timer.advance(1s);
  auto again = r.plan(server);  // a still rests (kernel's timer); b's rest is a guess with no pair to ask about
  REQUIRE(again);
  CHECK(again->local->port() == port_b);
  CHECK(census.surveys() == 2);
  CHECK(census.look_ups() == 1);
}

TEST_CASE("threads sharing a rotation while censuses run never get the same port at once", "[census][threads]") {
  // Each thread takes a port, closes it normally (a guessed 60 s rest), and now and then moves
  // time on, so guessed rests run out and plan() asks the census (look_ups and surveys) while
  // other threads take and return ports: the census runs without the lock, so this is where a
  // port could be lent twice or a stale queue position used.
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FixedPortRotation r{cp::PortRange{40000, 40007}, {.seed = 8, .census = &census}};
  r.use_clock(timer);
  std::mutex lent_mutex;
  std::set<std::uint16_t> lent;
  std::atomic<int> twice{0}, made{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        auto plan = r.plan(server);
        if (!plan) {
          timer.advance(61s);  // every port cooling: let the guesses run out
          continue;
        }
        const auto port = plan->local->port();
        {
          std::lock_guard lock(lent_mutex);
          if (!lent.insert(port).second) ++twice;
        }
        ++made;
        std::this_thread::yield();  // hold it a moment, as a connection would
        {
          std::lock_guard lock(lent_mutex);
          lent.erase(port);
        }
        if ((i + t) % 3 == 0) {
          plan->lease->on_close(cp::CloseKind::reset);
        } else {
          plan->lease->closing_from(local(port));
          plan->lease->on_close(cp::CloseKind::normal);
        }
      }
    });
  for (auto& th : threads) th.join();
  CHECK(twice == 0);
  CHECK(made > 2000);
  const auto snap = r.snapshot();
  CHECK(snap.in_use == 0);
  CHECK(snap.ready + snap.cooling == 8);  // every port back in the queue exactly once
  CHECK(snap.look_ups > 0);               // the cheap question was asked ...
  CHECK(snap.surveys >= 1);               // ... and the survey at start
}

TEST_CASE("when guesses run out together, every one is checked before any is offered", "[census][look_up]") {
  // The storm case: ports closed within moments rest until about the same instant; the kernel
  // frees them a little later (its timer wheel). Checking only the ports whose guess has run out
  // would leave the next ones, a millisecond later, to be offered unchecked (censuses are at least
  // 10 ms apart) into binds that fail: every guess is asked about at once.
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.set_time_wait_slack(500ms);
  cp::FixedPortRotation r{cp::PortRange{40000, 40002}, {.seed = 9, .census = &census}};
  r.use_clock(timer);
  for (int i = 0; i < 3; ++i) {
    auto plan = r.plan(server);
    REQUIRE(plan);
    const auto port = plan->local->port();
    plan->lease->closing_from(local(port));
    plan->lease->on_close(cp::CloseKind::normal);
    census.add_time_wait(local(port), server, cp::platform_time_wait + 1s);  // the kernel: 1 s past our guess
    timer.advance(1ms);
  }
  timer.advance(cp::platform_time_wait - 3ms);  // the first guess runs out; the others 1 and 2 ms later
  auto none = r.plan(server);
  REQUIRE_FALSE(none);  // nothing offered: each is still in TIME_WAIT
  CHECK(*none.error().retry_after() == 1s + 500ms);
  CHECK(census.look_ups() == 1);  // one question about all three
  timer.advance(2ms);             // every guess has run out, within 10 ms of that census: no new one
  auto still_none = r.plan(server);
  REQUIRE_FALSE(still_none);
  CHECK(census.look_ups() == 1);
  CHECK(r.snapshot().cooling == 3);
  timer.advance(1s + 500ms);
  CHECK(r.plan(server));
}

TEST_CASE("a census that does not say how long a TIME_WAIT lasts (Windows) keeps the port and looks again every second",
          "[census][windows]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.report_time_left(false);  // as GetExtendedTcpTable: TIME_WAIT, without the time left
  for (int port = 40000; port <= 40002; ++port) census.add_time_wait(local(port), server, 5s);
  cp::FixedPortRotation r{cp::PortRange{40000, 40003}, {.seed = 5, .census = &census}};
  r.use_clock(timer);
  CHECK(take(r) == 40003);
  CHECK(census.surveys() == 1);

  auto none = r.plan(server);
  REQUIRE_FALSE(none);
  REQUIRE(none.error().retry_after());
  CHECK(*none.error().retry_after() == 1s);  // not "free now", not a made-up 120 s: look again
  CHECK_THAT(none.error().message(),
             Contains("is looked at again in 1.0 s (in TIME_WAIT, and the system does not say for how long)"));
  timer.advance(1s);
  REQUIRE_FALSE(r.plan(server));  // looked again: still in TIME_WAIT
  CHECK(census.surveys() == 2);
  timer.advance(4s);  // the TIME_WAITs end
  auto plan = r.plan(server);
  REQUIRE(plan);
  CHECK(plan->local->port() >= 40000);
  CHECK(plan->local->port() <= 40002);
  CHECK(census.surveys() == 3);
}

TEST_CASE("a look_up that finds its own TIME_WAIT without the time left does not offer the port",
          "[census][look_up][windows]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.report_time_left(false);
  cp::FixedPortRotation r{cp::PortRange{40000, 40000}, {.seed = 6, .census = &census}};
  r.use_clock(timer);
  auto plan = r.plan(server);
  REQUIRE(plan);
  plan->lease->closing_from(local(40000));
  plan->lease->on_close(cp::CloseKind::normal);
  census.add_time_wait(local(40000), server, cp::platform_time_wait + 3s);  // longer than the guess
  timer.advance(cp::platform_time_wait);                                    // the guess runs out
  auto none = r.plan(server);
  REQUIRE_FALSE(none);  // the look_up says TIME_WAIT: not offered into it
  CHECK(census.look_ups() == 1);
  CHECK(*none.error().retry_after() == 1s);
  timer.advance(1s);
  REQUIRE_FALSE(r.plan(server));
  CHECK(census.look_ups() == 2);  // its own connection: still the cheap question
  timer.advance(2s);
  CHECK(r.plan(server));
}

TEST_CASE("a port whose bind failed keeps its rest when the census shows nothing there", "[census]") {
  // A socket that is bound and nothing more appears in no table the census reads (/proc, older
  // kernels' netlink, Windows): the failed bind is the only witness, so it is believed.
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);  // sees nothing at all
  cp::FixedPortRotation r{cp::PortRange{40000, 40001}, {.seed = 7, .census = &census}};
  r.use_clock(timer);
  auto plan = r.plan(server);
  REQUIRE(plan);
  const auto held = plan->local->port();
  r.failed(*plan, cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)).with_local(*plan->local));
  for (int i = 0; i < 10; ++i) {
    auto next = r.plan(server);
    REQUIRE(next);
    CHECK(next->local->port() != held);
    next->lease->on_close(cp::CloseKind::reset);
    timer.advance(1s);
  }
  CHECK(census.surveys() >= 2);           // the failure made it ask; the answer did not clear the port
  timer.advance(cp::platform_time_wait);  // the rest the failure earned is over: binding decides again
  std::set<std::uint16_t> offered;
  for (int i = 0; i < 20; ++i) {
    auto next = r.plan(server);
    REQUIRE(next);
    offered.insert(next->local->port());
    next->lease->on_close(cp::CloseKind::reset);
  }
  CHECK(offered.contains(held));
}

TEST_CASE("census rotation: plan(remote, ask) never asks the census itself: it hands the question to its driver",
          "[bind][census]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  census.add(local(40000), server, cp::TcpState::established);  // another program holds 40000
  cp::FixedPortRotation r{cp::PortRange::make(40000, 40001).value(), {.census = &census}};
  r.use_clock(timer);

  cp::CensusAsk ask;
  auto first = r.plan(server, ask);  // the census at start is due
  REQUIRE(ask.question);
  CHECK_FALSE(first);
  CHECK(census.surveys() == 0);  // asked of nobody yet
  CHECK(r.snapshot().in_use == 0);

  cp::CensusAsk other;  // another connect meanwhile joins the same question
  CHECK_FALSE(r.plan(server, other));
  REQUIRE(other.question);

  ask.question->answer();
  other.question->answer();  // answered already: nothing asked again
  CHECK(census.surveys() == 1);
  ask.answered = other.answered = true;
  auto planned = r.plan(server, ask);
  REQUIRE(planned);
  CHECK(planned->local->port() == 40001);  // the census said 40000 is held
  CHECK(r.snapshot().in_use == 1);
  auto none = r.plan(server, other);  // answered: it plans from what it knows, and asks nothing more
  REQUIRE_FALSE(none);
  CHECK(none.error().condition() == cp::Errc::local_ports_exhausted);
  CHECK(census.surveys() == 1);
}

TEST_CASE("census rotation: a Connector asks the rotation's census question on its own thread, and a throw from "
          "it reaches the caller with nothing lent",
          "[bind][census][hooks]") {
  cp::ManualTimer timer;
  cp::FakeCensus census(timer);
  cp::FakeSystem sys;
  cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, cp::FakeSystem> client{
      {.bind = cp::FixedPortRotation{cp::PortRange::make(40000, 40003).value(), {.census = &census}},
       .system = sys,
       .options = {.timer = &timer}}};
  census.while_surveying([] { throw std::runtime_error("census failed"); });
  CHECK_THROWS_WITH(client.connect(server), "census failed");
  CHECK(sys.open_handles() == 0);
  CHECK(client.bind_policy().snapshot().in_use == 0);

  census.while_surveying({});  // the next connect plans from memory, as after a census that failed
  auto s = client.connect(server);
  REQUIRE(s);
  CHECK(census.surveys() == 1);
}
