// The kernel census (connpolicy.diag) against real sockets on loopback, and the restart case:
// a new process's rotation binds each port once, though its predecessor left half the range in
// TIME_WAIT.
#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>
#include "fd_count.hpp"
#include "time_wait.hpp"
import connpolicy;
import connpolicy.testing;
#include "counting_system.hpp"
#include "loopback.hpp"

extern char** environ;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using test_support::open_fd_count;

namespace {

using test_support::CountingSystem;

std::vector<cp::PortUse> in_state(const cp::Census& census, cp::TcpState state) {
  std::vector<cp::PortUse> out;
  for (const auto& use : census.uses)
    if (use.state == state) out.push_back(use);
  return out;
}

std::set<std::uint16_t> ports_of(const std::vector<cp::PortUse>& uses) {
  std::set<std::uint16_t> out;
  for (const auto& use : uses) out.insert(use.local.port());
  return out;
}

// Runs `argv` and returns what it printed on stdout, or nullopt if it failed.
std::optional<std::string> run(std::vector<std::string> args) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::string text;
  char buffer[256];
  for (ssize_t n; spawned == 0 && (n = ::read(out[0], buffer, sizeof buffer)) > 0;)
    text.append(buffer, static_cast<std::size_t>(n));
  ::close(out[0]);
  if (spawned != 0) return std::nullopt;
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return text;
}

}  // namespace

TEST_CASE("the census sees the TIME_WAIT entries a test made, with plausible time left", "[census]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto first = test_support::free_port_block(8);
    const cp::PortRange range = cp::PortRange::make(first, first + 7).value();
    cp::Connector<cp::FixedPortRotation> client{cp::FixedPortRotation{range}};
    for (int i = 0; i < 5; ++i) REQUIRE(client.connect(server.endpoint()));  // client closes first
    REQUIRE(server.wait_closed(5));
    auto live = client.connect(server.endpoint());  // one ESTABLISHED as well
    REQUIRE(live);
    const auto live_port = live->local_endpoint().value().port();

    for (const auto method : {cp::CensusMethod::netlink, cp::CensusMethod::proc_net_tcp}) {
      CAPTURE(static_cast<int>(method));
      cp::KernelCensus kernel(method);
      std::optional<cp::Census> census;
      // A close still under way (FIN_WAIT2) becomes TIME_WAIT within moments: allow 1 s.
      for (int tries = 0; tries < 100; ++tries) {
        auto c = kernel.survey(range);
        REQUIRE(c);
        census = *c;
        if (in_state(*census, cp::TcpState::time_wait).size() == 5) break;
        std::this_thread::sleep_for(10ms);
      }
      CHECK(census->source ==
            (method == cp::CensusMethod::netlink ? cp::CensusSource::netlink : cp::CensusSource::proc_net_tcp));
      const auto waits = in_state(*census, cp::TcpState::time_wait);
      REQUIRE(waits.size() == 5);
      for (const auto& use : waits) {
        CHECK(range.contains(use.local.port()));
        CHECK(use.local.is_loopback());
        CHECK(use.remote == server.endpoint());
        REQUIRE(use.time_wait_left);
        CHECK(*use.time_wait_left > 50s);   // made a moment ago ...
        CHECK(*use.time_wait_left <= 60s);  // ... and Linux's TIME_WAIT is 60 s
      }
      const auto established = in_state(*census, cp::TcpState::established);
      REQUIRE(established.size() == 1);
      CHECK(established[0].local.port() == live_port);
      CHECK_FALSE(established[0].time_wait_left);
      CHECK(ports_of(waits).count(live_port) == 0);
    }
  }
  CHECK(open_fd_count() == fds);  // the netlink socket and the /proc files were closed
}

TEST_CASE("look_up finds exactly the connections asked for, TIME_WAIT with its time left, by both methods",
          "[census][look_up]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto first = test_support::free_port_block(6);
    cp::Connector<cp::FixedPortRotation> client{cp::FixedPortRotation{cp::PortRange::make(first, first + 5).value()}};
    std::vector<cp::SocketPair> closed;
    for (int i = 0; i < 3; ++i) {
      auto s = client.connect(server.endpoint());
      REQUIRE(s);
      closed.push_back({s->local_endpoint().value(), server.endpoint()});
    }  // the client closes first: TIME_WAIT here
    REQUIRE(server.wait_closed(3));
    auto live = client.connect(server.endpoint());
    REQUIRE(live);
    const cp::SocketPair live_pair{live->local_endpoint().value(), server.endpoint()};
    // Never made: a closed connection's port towards another port of the server's address.
    const cp::SocketPair never{closed[0].local,
                               server.endpoint().with_port(static_cast<std::uint16_t>(server.endpoint().port() ^ 1))};
    std::vector<cp::SocketPair> asked = closed;
    asked.push_back(live_pair);
    asked.push_back(never);

    for (const auto method : {cp::CensusMethod::netlink, cp::CensusMethod::proc_net_tcp}) {
      CAPTURE(static_cast<int>(method));
      cp::KernelCensus kernel(method);
      std::optional<cp::Census> answer;
      for (int tries = 0; tries < 100; ++tries) {  // a close under way becomes TIME_WAIT within moments
        auto a = kernel.look_up(asked);
        REQUIRE(a);
        answer = *a;
        // /proc/net/tcp is read in pieces while sockets move (FIN_WAIT2 -> TIME_WAIT), so one read
        // may list a connection twice: read again until it is consistent.
        if (in_state(*answer, cp::TcpState::time_wait).size() == 3 && answer->uses.size() == 4) break;
        std::this_thread::sleep_for(10ms);
      }
      REQUIRE(answer->uses.size() == 4);  // the three closed, the live one; not the one never made
      const auto waits = in_state(*answer, cp::TcpState::time_wait);
      REQUIRE(waits.size() == 3);
      for (const auto& use : waits) {
        CHECK(std::ranges::any_of(
            closed, [&](const cp::SocketPair& p) { return p.local == use.local && p.remote == use.remote; }));
        REQUIRE(use.time_wait_left);
        CHECK(*use.time_wait_left > 50s);
        CHECK(*use.time_wait_left <= 60s);
      }
      const auto established = in_state(*answer, cp::TcpState::established);
      REQUIRE(established.size() == 1);
      CHECK(established[0].local == live_pair.local);
      CHECK(answer->time_wait_slack == cp::time_wait_timer_slack());
    }

    // The exact lookup and the walk tell the same time left (within the 10 ms ticks of /proc and the time between).
    auto by_look_up = cp::KernelCensus(cp::CensusMethod::netlink).look_up(closed);
    auto by_survey = cp::KernelCensus(cp::CensusMethod::netlink).survey(cp::PortRange::make(first, first + 5).value());
    REQUIRE(by_look_up);
    REQUIRE(by_survey);
    for (const auto& use : by_look_up->uses) {
      const auto same = std::ranges::find_if(
          by_survey->uses, [&](const cp::PortUse& u) { return u.local == use.local && u.remote == use.remote; });
      REQUIRE(same != by_survey->uses.end());
      CHECK(same->state == use.state);
      CHECK(*use.time_wait_left - *same->time_wait_left < 1s);
      CHECK(*same->time_wait_left - *use.time_wait_left < 1s);
    }
  }
  CHECK(open_fd_count() == fds);  // every lookup's netlink socket was closed
}

TEST_CASE("after its own closes, the rotation asks the kernel about exactly those connections and says the exact wait",
          "[census][look_up]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;  // the client closes first: TIME_WAIT on the client's ports
    const auto first = test_support::free_port_block(3);
    cp::Connector<cp::FixedPortRotation> client{cp::FixedPortRotation{cp::PortRange::make(first, first + 2).value()}};
    for (int i = 0; i < 3; ++i) REQUIRE(client.connect(server.endpoint()));
    REQUIRE(server.wait_closed(3));
    std::this_thread::sleep_for(20ms);  // censuses are at least 10 ms apart unless a guess proved wrong
    auto none = client.connect(server.endpoint());
    REQUIRE_FALSE(none);
    CHECK(none.error().condition() == cp::Errc::local_ports_exhausted);
    CHECK_THAT(none.error().message(), Catch::Matchers::Contains("the kernel's TIME_WAIT timer"));
    REQUIRE(none.error().retry_after());
    CHECK(*none.error().retry_after() > 55s);
    CHECK(*none.error().retry_after() <= 60s + cp::time_wait_timer_slack());
    const auto snap = client.bind_policy().snapshot();
    CHECK(snap.surveys == 1);   // at start only
    CHECK(snap.look_ups == 1);  // the three closed connections, by their four ends
    CHECK(snap.census_problem.empty());
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("netlink and /proc/net/tcp agree, and a range filters out other ports", "[census]") {
  cp::LoopbackServer server;
  const auto first = test_support::free_port_block(4);
  const cp::PortRange range = cp::PortRange::make(first, first + 3).value();
  cp::Connector<cp::FixedPortRotation> client{cp::FixedPortRotation{range}};
  std::vector<cp::Socket> open;
  for (int i = 0; i < 3; ++i) open.push_back(client.connect(server.endpoint()).value());
  auto by_netlink = cp::KernelCensus(cp::CensusMethod::netlink).survey(range);
  auto by_proc = cp::KernelCensus(cp::CensusMethod::proc_net_tcp).survey(range);
  REQUIRE(by_netlink);
  REQUIRE(by_proc);
  CHECK(ports_of(by_netlink->uses) == ports_of(by_proc->uses));
  CHECK(ports_of(by_netlink->uses).size() == 3);
  // The server's listening port is not in the range, so neither reports it.
  for (const auto& use : by_netlink->uses) CHECK(use.local.port() != server.endpoint().port());
  auto elsewhere =
      cp::kernel_census().survey(cp::PortRange::make(server.endpoint().port(), server.endpoint().port()).value());
  REQUIRE(elsewhere);
  CHECK(in_state(*elsewhere, cp::TcpState::listen).size() == 1);
}

TEST_CASE("close_reset() leaves no TIME_WAIT entry, a normal close does", "[census]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  cp::LoopbackServer server;
  const auto first = test_support::free_port_block(2);
  const cp::PortRange range = cp::PortRange::make(first, first + 1).value();
  cp::Connector<cp::FixedPortRotation> client{cp::FixedPortRotation{range}};
  auto a = client.connect(server.endpoint()).value();
  auto b = client.connect(server.endpoint()).value();
  const auto reset_port = a.local_endpoint().value().port();
  const auto normal_port = b.local_endpoint().value().port();
  a.close_reset();  // RST: unsent data lost, the peer sees a reset, no TIME_WAIT
  b.close();
  REQUIRE(server.wait_closed(2));
  std::set<std::uint16_t> waiting;
  for (int tries = 0; tries < 100 && !waiting.count(normal_port); ++tries) {
    waiting = ports_of(in_state(cp::kernel_census().survey(range).value(), cp::TcpState::time_wait));
    std::this_thread::sleep_for(10ms);
  }
  CHECK(waiting.count(normal_port) == 1);
  CHECK(waiting.count(reset_port) == 0);
  CHECK(ports_of(cp::kernel_census().survey(range).value().uses).count(reset_port) == 0);  // nothing at all
}

TEST_CASE("restart, for real: process A leaves 20 of 40 ports in TIME_WAIT, process B binds each port once",
          "[census][restart]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    const auto first = test_support::free_port_block(40);
    const cp::PortRange range = cp::PortRange::make(first, first + 39).value();
    // Process A: 20 connections through its own rotation, each closed first; then it exits.
    const auto printed = run({CONNPOLICY_RESTART_CLIENT, server.endpoint().to_string(), std::to_string(range.first()),
                              std::to_string(range.last()), "20"});
    REQUIRE(printed);
    std::set<std::uint16_t> used_by_a;
    std::istringstream in(*printed);
    for (unsigned port; in >> port;) used_by_a.insert(static_cast<std::uint16_t>(port));
    REQUIRE(used_by_a.size() == 20);
    REQUIRE(server.wait_closed(20));
    std::set<std::uint16_t> waiting;
    for (int tries = 0; tries < 300 && waiting != used_by_a; ++tries) {  // 3 s: slow under TSan
      waiting = ports_of(in_state(cp::kernel_census().survey(range).value(), cp::TcpState::time_wait));
      std::this_thread::sleep_for(10ms);
    }
    if (waiting != used_by_a) {  // say what the kernel holds on the range, to tell why
      for (const auto& use : cp::kernel_census().survey(range).value().uses)
        UNSCOPED_INFO(use.local.to_string()
                      << " -> " << use.remote.to_string() << " state " << static_cast<int>(use.state));
    }
    REQUIRE(waiting == used_by_a);  // the kernel remembers what process A did; B's memory is empty

    // Process B (this one): a fresh rotation over the same range, no reuse_address.
    {
      cp::Connector<cp::FixedPortRotation, cp::NoRetry, cp::DefaultErrorPolicy, CountingSystem> client{
          cp::FixedPortRotation{range}};
      std::set<std::uint16_t> used_by_b;
      for (int i = 0; i < 20; ++i) {
        auto s = client.connect(server.endpoint());
        REQUIRE(s);
        used_by_b.insert(s->local_endpoint().value().port());
      }
      CHECK(*client.system().binds == 20);  // exactly one bind per connection
      std::vector<std::uint16_t> both;
      std::ranges::set_intersection(used_by_a, used_by_b, std::back_inserter(both));
      CHECK(both.empty());
      CHECK(client.bind_policy().snapshot().surveys == 1);  // at start; nothing went wrong after
    }
  }  // the server (in this process) is gone: only the client's descriptors could remain
  CHECK(open_fd_count() == fds);
}

// Who holds a socket, by both census methods (their inodes and uids): a socket this process holds
// is named with this process's pid and command; a TIME_WAIT has no process; the pass over /proc
// leaves no descriptor open.
TEST_CASE("find_socket_owners names this process for its own sockets, and no process for a TIME_WAIT",
          "[census][owners]") {
  test_support::needs_lasting_time_wait();
  cp::LoopbackServer server;
  cp::Connector<cp::NoBind> client;
  auto live = client.connect(server.endpoint());
  REQUIRE(live);
  const auto live_port = live->local_endpoint().value().port();
  std::uint16_t waiting_port = 0;
  {
    auto closed = client.connect(server.endpoint());
    REQUIRE(closed);
    waiting_port = closed->local_endpoint().value().port();
  }
  REQUIRE(server.wait_closed(1));
  std::string command;
  {
    std::ifstream comm("/proc/self/comm");
    std::getline(comm, command);
  }
  for (const auto method : {cp::CensusMethod::netlink, cp::CensusMethod::proc_net_tcp}) {
    auto census = cp::KernelCensus(method).survey(cp::PortRange::make(1, 65535).value());
    REQUIRE(census);
    const std::size_t fds = open_fd_count();
    const auto owners = cp::find_socket_owners(census->uses);
    CHECK(open_fd_count() == fds);
    CHECK(owners.processes >= 1);
    bool saw_live = false, saw_waiting = false;
    for (const auto& use : census->uses) {
      if (use.local.port() == live_port && use.remote == server.endpoint()) {
        saw_live = true;
        const auto owner = owners.of(use);
        CHECK(owner.pid == static_cast<std::uint32_t>(::getpid()));
        CHECK(owner.command == command);
        CHECK(owner.uid == static_cast<std::uint32_t>(::geteuid()));
        CHECK(use.inode != 0);
      }
      if (use.local.port() == waiting_port && use.state == cp::TcpState::time_wait) {
        saw_waiting = true;
        CHECK(owners.of(use).unknown == cp::SocketOwner::Unknown::time_wait);
        CHECK_FALSE(owners.of(use).pid);
      }
    }
    CHECK(saw_live);
    CHECK(saw_waiting);
  }
}
