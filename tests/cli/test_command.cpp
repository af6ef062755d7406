// The built `connpolicy` command against loopback state each test makes itself: its own TIME_WAITs
// on a range, a server, a fixed-port client. Output checked as parsed JSON (values) and as text.
// Runs in a network namespace of its own where the host allows (support/catch_main_netns.cpp).
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>
import connpolicy;
import connpolicy.testing;
#include "fd_count.hpp"
#include "time_wait.hpp"
#include "loopback.hpp"

namespace cp = connpolicy;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {
struct Run {
  int exit = -1;
  std::string out, err;
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

Run run(const std::string& args) {
  char err_path[] = "/tmp/connpolicy-command-XXXXXX";
  const int err_fd = ::mkstemp(err_path);
  REQUIRE(err_fd >= 0);
  ::close(err_fd);
  const std::string line = std::string(CONNPOLICY_COMMAND) + " " + args + " 2>" + err_path;
  Run r;
  FILE* pipe = ::popen(line.c_str(), "r");
  REQUIRE(pipe);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = ::pclose(pipe);
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  r.err.assign(std::istreambuf_iterator<char>(err), {});
  ::unlink(err_path);
  INFO(line << "\nstdout: " << r.out << "\nstderr: " << r.err);
  return r;
}

// execv's argument vector for `args` (which must outlive it).
std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// Connects from first+offset for each offset and closes first: TIME_WAITs on those ports.
void leave_time_waits(cp::LoopbackServer& server, std::uint16_t first, std::initializer_list<int> offsets) {
  for (int offset : offsets) {
    cp::Connector<cp::FixedPort> client{cp::FixedPort::make(first + offset).value()};
    auto socket = client.connect(server.endpoint());
    REQUIRE(socket);
  }
  REQUIRE(server.wait_closed(static_cast<int>(offsets.size())));
}
}  // namespace

TEST_CASE("connpolicy doctor: TIME_WAITs a test left on its range, per port and per destination", "[command]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  cp::LoopbackServer server;
  const auto first = test_support::free_port_block(10);
  const std::string range = std::to_string(first) + "-" + std::to_string(first + 9);
  leave_time_waits(server, first, {0, 1, 3});
  const auto r = run("doctor --range " + range + " --to " + server.endpoint().to_string() + " --json");
  REQUIRE(r.exit == 1);  // findings
  const auto j = r.json();
  CHECK(j["version"] == 2);
  CHECK(j["to"]["remote"] == server.endpoint().to_string());
  CHECK(j["to"]["time_wait"] == 3);
  REQUIRE(j["range"]["held"].size() == 3);
  CHECK(j["range"]["free"] == 7);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& socket = j["range"]["held"][i]["sockets"][0];
    CHECK(socket["state"] == "TIME_WAIT");
    CHECK(socket["remote"] == server.endpoint().to_string());
    CHECK(socket["time_wait_left_ms"].get<long>() > 50000);  // Linux's 60 s, a moment after the close
    CHECK(socket["time_wait_left_ms"].get<long>() <= 60000);
  }
  CHECK(j["range"]["held"][2]["port"] == first + 3);
  CHECK(j["findings"][0]["id"] == "time_wait_in_range");
  CHECK(j["findings"][0]["ports"] == nlohmann::json::array({first, first + 1, first + 3}));
  const auto text = run("doctor --range " + range);
  CHECK(text.exit == 1);
  CHECK_THAT(text.out, Contains("range " + range + ": 3 held, 7 free") &&
                           Contains("[time_wait_in_range] 3 port(s) of " + range + " held by TIME_WAIT (" +
                                    std::to_string(first) + " for "));
  CHECK(text.err.empty());
}

namespace {
// Gives this test's network namespace an ephemeral range of 100 ports, 41000-41099. False where
// the test has no namespace of its own (the host's range is not the test's to change).
bool small_ephemeral_range() {
  if (!test_support::time_waits_last()) return false;  // catch_main_netns.cpp set it in our own
  std::ofstream("/proc/sys/net/ipv4/ip_local_port_range") << "41000 41099\n";
  return test_support::ephemeral_range() == std::pair{41000, 41099};
}

// The kernel's own count: connects to `to` from ports the kernel chooses, held open, until one
// fails with EADDRNOTAVAIL (at most 200). Returns how many were made; closes them all.
int connects_until_no_port(const cp::Endpoint& to) {
  std::vector<int> held;
  int refused_with = 0;
  for (int i = 0; i < 200 && refused_with == 0; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(to.port());
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0) {
      held.push_back(fd);
    } else {
      refused_with = errno;
      ::close(fd);
    }
  }
  CHECK(refused_with == EADDRNOTAVAIL);
  for (int fd : held) ::close(fd);
  return static_cast<int>(held.size());
}
}  // namespace

// Linux's connect() never picks a port claimed with bind(), towards any destination: 50
// TIME_WAITs from ports 41000-41049 bound explicitly (FixedPort) towards server A leave the
// kernel 50 ports towards server B, not 100. doctor says 50 when --range names the bound ports,
// and "100 left (as few as 50)" when it cannot know; the kernel's count is checked against both.
TEST_CASE("connpolicy doctor: headroom with ports bound explicitly agrees with the kernel's count", "[command]") {
  if (!small_ephemeral_range()) {
    WARN("needs a network namespace of the test's own (root) to shrink the ephemeral range: not run");
    return;
  }
  cp::LoopbackServer a(cp::LoopbackServer::Mode::client_closes_first, 7100);  // both outside the range
  cp::LoopbackServer b(cp::LoopbackServer::Mode::client_closes_first, 7101);
  for (int i = 0; i < 50; ++i) {
    cp::Connector<cp::FixedPort> client{cp::FixedPort::make(static_cast<std::uint16_t>(41000 + i)).value()};
    REQUIRE(client.connect(a.endpoint()));
  }
  REQUIRE(a.wait_closed(50));
  const auto named = run("doctor --range 41000-41049 --to 127.0.0.1:7101 --json").json();
  CHECK(named["to"]["ephemeral_ports_left"] == 50);
  CHECK(named["to"]["ephemeral_ports_left_at_least"] == 50);
  const auto unnamed = run("doctor --to 127.0.0.1:7101");
  CHECK_THAT(unnamed.out, Contains("to 127.0.0.1:7101: 0 TIME_WAIT, 0 ephemeral ports held, 100 left (as few as 50)"));
  CHECK(connects_until_no_port(b.endpoint()) == 50);
}

// The other end of the span: 50 TIME_WAITs from ports the kernel chose (no bind()) towards A
// leave all 100 towards B, as doctor's upper figure says.
TEST_CASE("connpolicy doctor: headroom with ports the kernel chose agrees with the kernel's count", "[command]") {
  if (!small_ephemeral_range()) {
    WARN("needs a network namespace of the test's own (root) to shrink the ephemeral range: not run");
    return;
  }
  cp::LoopbackServer a(cp::LoopbackServer::Mode::client_closes_first, 7100);
  cp::LoopbackServer b(cp::LoopbackServer::Mode::client_closes_first, 7101);
  for (int i = 0; i < 50; ++i) {
    cp::Connector<cp::NoBind> client;
    REQUIRE(client.connect(a.endpoint()));
  }
  REQUIRE(a.wait_closed(50));
  const auto j = run("doctor --to 127.0.0.1:7101 --json").json();
  CHECK(j["to"]["ephemeral_ports_left"] == 100);
  CHECK(j["to"]["ephemeral_ports_left_at_least"] == 50);
  CHECK(connects_until_no_port(b.endpoint()) == 100);
}

namespace {
// A child of this test, its command name `name`, that holds a socket connected to `server` from
// local port `port` until let_go(). Between fork and exit it makes only async-signal-safe calls.
struct Holder {
  pid_t pid = -1;
  int release = -1;  // closing it lets the child go
};
Holder hold_port(const char* name, std::uint16_t port, const cp::Endpoint& server) {
  int ready[2], release[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(release, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    ::prctl(PR_SET_NAME, name);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{}, remote{};
    local.sin_family = remote.sin_family = AF_INET;
    local.sin_port = htons(port);
    local.sin_addr.s_addr = remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    remote.sin_port = htons(server.port());
    char ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0 &&
              ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0;
    (void)!::write(ready[1], &ok, 1);
    (void)!::read(release[0], &ok, 1);  // until the parent closes its end
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char ok = 0;
  const bool said = ::read(ready[0], &ok, 1) == 1;
  ::close(ready[0]);
  Holder h{pid, release[1]};
  if (!said || !ok) {
    ::close(h.release);
    ::waitpid(pid, nullptr, 0);
    FAIL("the child could not bind port " << port << " and connect");
  }
  return h;
}
void let_go(Holder& h) {
  ::close(h.release);
  ::waitpid(h.pid, nullptr, 0);
}

// The command as user nobody (65534), from a copy it may execute: what an unprivileged user sees.
// Empty when this test is not root (it cannot become another user).
std::optional<Run> run_as_nobody(std::vector<std::string> args) {
  if (::geteuid() != 0) return std::nullopt;
  char dir[] = "/tmp/connpolicy-nobody-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string copy = std::string(dir) + "/connpolicy";
  {
    std::ifstream in(CONNPOLICY_COMMAND, std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
  }
  REQUIRE(::chmod(dir, 0755) == 0);
  REQUIRE(::chmod(copy.c_str(), 0755) == 0);
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  args.insert(args.begin(), copy);
  std::vector<char*> argv = argv_of(args);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(out[1], 1);
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(126);
    ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);  // LeakSanitizer may not trace a process of another user
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  Run r;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) r.out.append(buffer, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ::unlink(copy.c_str());
  ::rmdir(dir);
  INFO("as nobody: " << r.out);
  return r;
}
}  // namespace

// Who holds my port: a child of this test, named "cp-holder", holds a port connected to a server;
// doctor and census name its pid, command and uid, in text and JSON, and census's filters find it.
// As user nobody, the same socket (root's) reads "unknown (needs root)".
TEST_CASE("connpolicy doctor and census name the process that holds a port", "[command][owners]") {
  cp::LoopbackServer server;
  const auto port = test_support::free_port_block(1);
  const std::string range = std::to_string(port) + "-" + std::to_string(port);
  Holder holder = hold_port("cp-holder", port, server.endpoint());
  const std::string pid = std::to_string(holder.pid);

  const auto doctor = run("doctor --range " + range + " --json").json();
  CHECK(doctor["version"] == 2);
  REQUIRE(doctor["range"]["held"].size() == 1);
  const auto& owner = doctor["range"]["held"][0]["sockets"][0]["owner"];
  CHECK(owner["pid"] == holder.pid);
  CHECK(owner["command"] == "cp-holder");
  CHECK(owner["uid"] == ::getuid());
  const auto text = run("doctor --range " + range + " --to " + server.endpoint().to_string());
  const std::string named = "held by pid " + pid + " (cp-holder), uid " + std::to_string(::getuid());
  CHECK_THAT(text.out, Contains(std::to_string(port) + "  ESTABLISHED  127.0.0.1:" + std::to_string(port) + " -> " +
                                server.endpoint().to_string() + "  " + named));
  CHECK_THAT(text.out, Contains("[port_in_use_in_range] 1 port(s) of " + std::to_string(port) +
                                " in use by a live socket (" + std::to_string(port) + " (ESTABLISHED to " +
                                server.endpoint().to_string() + ", " + named + "))"));
  CHECK_THAT(text.out, Contains("; most held by pid " + pid + " (cp-holder)"));

  // census: by range, by pid, by state and remote end; each finds the child's one socket.
  for (const std::string& ask : {"--range " + range, "--pid " + pid,
                                 "--state established --to " + server.endpoint().to_string() + " --pid " + pid}) {
    const auto census = run("census " + ask + " --json").json();
    INFO("census " << ask);
    REQUIRE(census["sockets"].size() == 1);
    CHECK(census["sockets"][0]["local"] == "127.0.0.1:" + std::to_string(port));
    CHECK(census["sockets"][0]["owner"]["pid"] == holder.pid);
    CHECK(census["sockets"][0]["owner"]["command"] == "cp-holder");
  }
  CHECK(run("census --state time-wait --to " + server.endpoint().to_string() + " --json").json()["sockets"].empty());
  CHECK_THAT(run("census --pid " + pid).out, Contains("held by pid " + pid + " (cp-holder)"));

  if (const auto nobody = run_as_nobody({"census", "--range", range, "--json"})) {
    REQUIRE(nobody->exit == 0);
    const auto j = nlohmann::json::parse(nobody->out);
    REQUIRE(j["sockets"].size() == 1);
    CHECK(j["sockets"][0]["owner"]["pid"].is_null());
    CHECK(j["sockets"][0]["owner"]["unknown"] == "needs_root");
    CHECK(j["sockets"][0]["owner"]["uid"] == 0);
    const auto line = run_as_nobody({"census", "--range", range});
    REQUIRE(line);
    CHECK_THAT(line->out, Contains("unknown (needs root), uid 0") && Contains("run as root to name"));
  } else {
    WARN("not root: the unprivileged view (another user's socket reads 'unknown (needs root)') is not checked");
  }
  let_go(holder);
}

TEST_CASE("connpolicy census: a range, and look-ups of exactly the connections asked", "[command]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  cp::LoopbackServer server;
  const auto first = test_support::free_port_block(10);
  leave_time_waits(server, first, {2, 5});
  const auto by_range = run("census --range " + std::to_string(first) + "-" + std::to_string(first + 9) + " --json");
  REQUIRE(by_range.exit == 0);
  const auto j = by_range.json();
  REQUIRE(j["sockets"].size() == 2);
  CHECK(j["sockets"][0]["state"] == "TIME_WAIT");
  const std::string server_end = server.endpoint().to_string();
  const std::string mine = cp::Endpoint::loopback_v4(first + 5).to_string() + "," + server_end;
  const std::string never = cp::Endpoint::loopback_v4(first + 6).to_string() + "," + server_end;
  const auto looked = run("census --look-up " + mine + " --look-up " + never + " --json").json();
  CHECK(looked["asked"] == 2);
  REQUIRE(looked["sockets"].size() == 1);
  CHECK(looked["sockets"][0]["local"] == cp::Endpoint::loopback_v4(first + 5).to_string());
}

TEST_CASE("connpolicy probe: --bind fixed:P --count 2 shows the seed's bug, and a rotation fixes it", "[command]") {
  test_support::needs_lasting_time_wait();  // it counts TIME_WAITs that must last their 60 s
  const auto fds = test_support::open_fd_count();
  {
    cp::LoopbackServer server;
    const auto first = test_support::free_port_block(10);
    const std::string to = server.endpoint().to_string();
    const auto seed = run("probe " + to + " --bind fixed:" + std::to_string(first) + " --count 2 --json");
    CHECK(seed.exit == 1);
    auto j = seed.json();
    CHECK(j["connects"][0]["connected"] == true);
    CHECK(j["connects"][1]["connected"] == false);
    CHECK(j["connects"][1]["error"]["step"] == "bind");
    CHECK(j["connects"][1]["error"]["condition"] == "local port busy");
    CHECK(j["summary"]["made"] == 1);
    CHECK(j["summary"]["binds"] == 2);
    REQUIRE(server.wait_closed(1));
    const auto rotation = run("probe " + to + " --bind rotation:" + std::to_string(first) + "-" +
                              std::to_string(first + 9) + " --count 2 --json");
    CHECK(rotation.exit == 0);
    CHECK(rotation.json()["summary"]["made"] == 2);
    const auto retried = run("probe " + to + " --bind fixed:" + std::to_string(first) + " --retry fixed:10ms,3 --json");
    CHECK(retried.exit == 1);
    j = retried.json();
    CHECK(j["summary"]["attempts"] == 3);
    CHECK(j["summary"]["waits"] == 2);
    CHECK(j["connects"][0]["attempts"][1]["action"] == "retry");
    const auto text = run("probe " + to + " --bind fixed:" + std::to_string(first));
    CHECK_THAT(text.out, Contains("bind: Address already in use  => give_up") &&
                             Contains("probe: 1 connects: 0 made, 1 failed; 1 attempts, 1 binds, 0 waits"));
    const auto named = run("probe localhost:" + std::to_string(server.endpoint().port()) + " --close reset");
    CHECK(named.exit == 0);
    CHECK_THAT(named.out, Contains("connected from 127.0.0.1:"));
    REQUIRE(server.wait_closed(4));
  }
  CHECK(test_support::open_fd_count() == fds);  // every pipe to the command closed
}

// Times per attempt, in microseconds from the connect's start: a refused port, retried after 10 ms.
TEST_CASE("connpolicy probe: each attempt says when it started and how long it took, in microseconds", "[command]") {
  const cp::Endpoint closed = cp::Endpoint::loopback_v4(test_support::free_port_block(1));  // nothing listens
  const auto j = run("probe " + closed.to_string() + " --retry fixed:10ms,2 --json").json();
  const auto& attempts = j["connects"][0]["attempts"];
  REQUIRE(attempts.size() == 2);
  const long first = attempts[0]["started_us"], second = attempts[1]["started_us"];
  CHECK(first >= 0);
  CHECK(first < 1'000'000);
  CHECK(second - first >= 10'000);  // the 10 ms wait lies between them
  CHECK(second - first < 2'000'000);
  for (const auto& a : attempts) {
    CHECK(a["took_us"].get<long>() >= 0);
    CHECK(a["took_us"].get<long>() < 1'000'000);  // a refused connect on loopback
  }
  CHECK(j["connects"][0]["ms"].get<double>() * 1000 >= static_cast<double>(second));
  const auto text = run("probe " + closed.to_string() + " --retry fixed:10ms,2");
  std::istringstream lines(text.out);
  int timed = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.find("  attempt ") == 0 && line.find(" us, took ") != std::string::npos && line.ends_with(" us)")) ++timed;
  CHECK(timed == 2);
}

TEST_CASE("connpolicy: bad usage is one line on stderr and exit 2, nothing on stdout", "[command]") {
  for (const char* args :
       {"", "bogus", "probe", "probe 127.0.0.1", "probe 127.0.0.1:7 --bind fixed:0",
        "probe 127.0.0.1:7 --bind rotation:9-1", "probe 127.0.0.1:7 --retry fixed:1", "probe 127.0.0.1:7 --count 0",
        "probe 127.0.0.1:7 --timeout 0", "probe 127.0.0.1:7 --close x", "doctor --range 5-1", "doctor --to nowhere",
        "census", "census --range 1-2 --look-up x", "census --look-up 1.2.3.4:5",
        // an explicitly empty value is bad usage, never "not given" (and then "healthy")
        "doctor --range ''", "doctor --to ''", "doctor --timeout ''", "census --range ''",
        "probe 127.0.0.1:7 --bind ''",
        // port 0 is no destination, as 65536 is none
        "probe 127.0.0.1:0", "probe localhost:0", "doctor --to 127.0.0.1:0", "doctor --to 127.0.0.1:65536",
        "doctor --to localhost:1 --timeout 0",
        // values holding control characters still give one line
        "probe 'a\nb:1'", "doctor --range '1-\n2'", "probe 127.0.0.1:7 --count '1\n2'"}) {
    const auto r = run(args);
    INFO("connpolicy " << args << " -> " << r.err);
    CHECK(r.exit == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, StartsWith("connpolicy: "));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  const auto help = run("--help");
  CHECK(help.exit == 0);
  CHECK_THAT(help.out, Contains("connpolicy probe 127.0.0.1:7000 --bind fixed:40000 --count 2"));
  CHECK_THAT(help.out, StartsWith("connpolicy: who holds my port") && Contains("Usage: connpolicy "));
  CHECK_THAT(help.out, !Contains(CONNPOLICY_COMMAND));  // the name users type, not where it was built
  CHECK_THAT(run("bogus").err, Contains("bogus"));      // the word it did not know
}

TEST_CASE("connpolicy: a report that could not be written is a failure, said in one line", "[command]") {
  for (const char* args : {"doctor --json", "doctor", "census --range 40000-40009 --json"}) {
    const auto full = run(std::string(args) + " >/dev/full");
    INFO("connpolicy " << args << " >/dev/full -> " << full.err);
    CHECK(full.exit == 3);
    CHECK_THAT(full.err, StartsWith("connpolicy: could not write the report to stdout"));
    CHECK(std::count(full.err.begin(), full.err.end(), '\n') == 1);
  }
  const auto fine = run("census --range 40000-40009 --json");
  CHECK(fine.exit == 0);
  CHECK(fine.err.empty());
}

TEST_CASE("connpolicy doctor --to NAME: a silent name server costs --timeout once, both families asked at once",
          "[command]") {
  // This process's own /etc/resolv.conf (a mount namespace of its own), pointing at a UDP port on
  // loopback that never answers; the command, started below, inherits it.
  if (!test_support::with_own_hosts_file("", "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n")) {
    WARN("no mount namespace of the test's own here (needs root): not run");
    return;
  }
  const int silent = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(silent >= 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(53);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  const auto start = std::chrono::steady_clock::now();
  const auto r = run("doctor --to silent.test:7000 --timeout 300ms");
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(silent);
  CHECK(r.exit == 1);
  CHECK_THAT(r.err, StartsWith("connpolicy: doctor: --to silent.test:7000: "));
  CHECK(took >= std::chrono::milliseconds(300));
  CHECK(took < std::chrono::seconds(3));  // not 5 s per family one after the other
}

namespace {
// The command's peak resident memory (kB) for `args`, its output thrown away.
long peak_rss_kb(std::vector<std::string> args) {
  args.insert(args.begin(), CONNPOLICY_COMMAND);
  std::vector<char*> argv = argv_of(args);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Under ASan freed memory waits in a quarantine (256 MB) and counts as resident: measure
    // without it, so what stays resident is what the command keeps.
    const char* asan = std::getenv("ASAN_OPTIONS");
    const std::string options =
        std::string(asan ? asan : "") + ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
    ::setenv("ASAN_OPTIONS", options.c_str(), 1);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  rusage use{};
  REQUIRE(::wait4(child, &status, 0, &use) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return use.ru_maxrss;
}
}  // namespace

TEST_CASE("connpolicy probe: text mode's memory stays flat over a long run", "[command]") {
  cp::LoopbackServer server;
  const std::string to = server.endpoint().to_string();
  const long short_run = peak_rss_kb({"probe", to, "--count", "200", "--close", "reset"});
  const long long_run = peak_rss_kb({"probe", to, "--count", "4000", "--close", "reset"});
  INFO("peak RSS: 200 connects " << short_run << " kB, 4000 connects " << long_run << " kB");
  // Keeping every connect's record cost about 1.4 kB each: 5 MB more for 3800 more connects.
  CHECK(long_run - short_run < 1500);
}

TEST_CASE("connpolicy probe: a lookup or a plan that fails is said as what it is, never as an attempt", "[command]") {
  // A pool with no IPv6 address has nothing to lend towards [::1]: no syscall, no attempt.
  const auto pool = run("probe [::1]:7 --bind pool:127.0.0.1 --json");
  CHECK(pool.exit == 1);
  auto j = pool.json();
  CHECK(j["connects"][0]["attempts"].empty());
  REQUIRE(j["connects"][0]["before_attempts"].size() == 1);
  CHECK(j["connects"][0]["before_attempts"][0]["step"] == "bind");
  CHECK(j["summary"]["attempts"] == 0);
  CHECK(j["summary"]["binds"] == 0);
  // A name that cannot be looked up here (a namespace with loopback only): the lookup's failure,
  // naming the name, not "attempt 0 (kernel's choice) -> 0.0.0.0:80".
  const auto name = run("probe nosuch.invalid:80");
  CHECK(name.exit == 1);
  CHECK_THAT(name.out, Contains("no attempt: resolve nosuch.invalid:80: ") && !Contains("attempt 0") &&
                           !Contains("0.0.0.0:80") && Contains("0 attempts, 0 binds"));
  const auto name_json = run("probe nosuch.invalid:80 --json").json();
  CHECK(name_json["connects"][0]["attempts"].empty());
  CHECK(name_json["connects"][0]["before_attempts"][0]["target"] == "nosuch.invalid:80");
  CHECK(name_json["summary"]["attempts"] == 0);
}
