// P2, rotation storm: rounds x K sequential connections over K local ports, the client closing
// first (so each used port sits in TIME_WAIT), for connpolicy's FixedPortRotation (default: the
// census and exact waits; reuse_address; reset close), libcurl (CURLOPT_LOCALPORT +
// CURLOPT_LOCALPORTRANGE, CURLOPT_FORBID_REUSE, CURLOPT_CONNECT_ONLY) and HAProxy 2.6 in TCP mode
// (`server ... source 127.0.0.1:FIRST-LAST`). bind() is interposed in this process, so
// connpolicy's and libcurl's are counted alike; HAProxy's are counted by strace.
//
//   rotation_storm [ports=20] [rounds=10] [row ...]
//       rows: connpolicy reuse reset libcurl haproxy (default: all but haproxy)
//   rotation_storm restart-a FIRST N        process A: N connections over FIRST..FIRST+2N-1, exit
//   rotation_storm restart-b FIRST N ROW    process B: the same range, after A; ROW as above
//
// Each row prints one table line: client, made, failed, bind calls, binds per connection made,
// time in seconds.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <curl/curl.h>
#include <dlfcn.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
std::atomic<long> bind_calls{0};
}  // namespace

// Every bind() of this process, connpolicy's and libcurl's alike, passes here.
extern "C" int bind(int fd, const sockaddr* address, socklen_t length) {
  using Real = int (*)(int, const sockaddr*, socklen_t);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "bind"));
  bind_calls.fetch_add(1, std::memory_order_relaxed);
  return real(fd, address, length);
}

namespace {

struct Row {
  int made = 0, failed = 0;
  long binds = 0;
  double ms = 0;
};

void print(const std::string& name, const Row& r) {
  std::printf("| %s | %d | %d | %ld | %.2f | %.1f |\n", name.c_str(), r.made, r.failed, r.binds,
              r.made ? static_cast<double>(r.binds) / r.made : 0.0, r.ms / 1000);
  std::fflush(stdout);
}

// A progress line every 20 connections on stderr: the exact waits make a row take minutes.
void progress(const char* row, int done, int cycles, int made) {
  if (done % 20 == 0 || done == cycles)
    std::fprintf(stderr, "rotation_storm: %s %d/%d (%d made)\n", row, done, cycles, made);
}

template <class Body>
Row measure(const char* row, int cycles, Body body) {
  Row r;
  bind_calls = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < cycles; ++i) {
    (body() ? r.made : r.failed)++;
    progress(row, i + 1, cycles, r.made);
  }
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  r.binds = bind_calls.load();
  return r;
}

// The application's connector: the census on (the default), DefaultErrorPolicy, and a retry
// policy whose exact waits (retry_after) let a storm through without a failed connection.
using Client = cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry>;

Row connpolicy_rotation(const char* row, cp::LoopbackServer& server, cp::PortRange range, int cycles,
                        cp::RotationOptions options, bool reset) {
  Client client{cp::FixedPortRotation{range, options}, cp::ExponentialRetry{{.max_attempts = 10}}};
  return measure(row, cycles, [&] {
    auto s = client.connect(server.endpoint());
    if (!s) {
      std::fprintf(stderr, "rotation_storm: %s\n", s.error().message().c_str());
      return false;
    }
    const int closed = server.closed();
    if (reset)
      s->close_reset();
    else
      s->close();
    server.wait_closed(closed + 1, 1s);  // the server closes after us: our port is in TIME_WAIT
    return true;
  });
}

Row libcurl(cp::LoopbackServer& server, cp::PortRange range, int cycles) {
  const std::string url = "http://" + server.endpoint().to_string() + "/";
  return measure("libcurl", cycles, [&] {
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(curl, CURLOPT_LOCALPORT, static_cast<long>(range.first()));
    curl_easy_setopt(curl, CURLOPT_LOCALPORTRANGE, static_cast<long>(range.size()));
    const int closed = server.closed();
    const bool ok = curl_easy_perform(curl) == CURLE_OK;
    curl_easy_cleanup(curl);  // closes the socket: the client first
    if (ok) server.wait_closed(closed + 1, 1s);
    return ok;
  });
}

// HAProxy 2.6 in TCP mode between a plain client and the server, its server connections bound
// to the range. Run under strace to count its bind() calls on the range's ports.
class HAProxy {
 public:
  HAProxy(const cp::LoopbackServer& server, cp::PortRange range) {
    front_ = cp::find_free_port(cp::Endpoint::loopback_v4(0)).value();
    const std::string dir = "/tmp/connpolicy-haproxy-" + std::to_string(::getpid());
    config_ = dir + ".cfg";
    trace_ = dir + ".strace";
    std::ofstream(config_) << "global\n  maxconn 1000\n"
                           << "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 10s\n"
                           << "  timeout server 10s\n  retries 3\n"
                           << "frontend storm\n  bind 127.0.0.1:" << front_ << "\n  default_backend storm\n"
                           << "backend storm\n  server s " << server.endpoint().to_string()
                           << " source 127.0.0.1:" << range.first() << "-" << range.last() << "\n";
    std::vector<std::string> args = {"strace", "-f",      "-qq", "-e", "trace=bind", "-o",
                                     trace_,   "haproxy", "-db", "-q", "-f",         config_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&strace_, "strace", nullptr, nullptr, argv.data(), environ) != 0) strace_ = 0;
    // Up when its frontend accepts (5 s at most).
    for (int i = 0; i < 500 && strace_ && !cp::Connector<cp::NoBind>{}.connect(frontend()); ++i)
      std::this_thread::sleep_for(10ms);
  }
  ~HAProxy() {
    // HAProxy runs as strace's child: stop it, then strace ends by itself.
    if (strace_) {
      for (const pid_t child : children_of(strace_)) ::kill(child, SIGTERM);
      ::waitpid(strace_, nullptr, 0);
    }
    std::remove(config_.c_str());
    std::remove(trace_.c_str());
  }
  bool running() const { return strace_ != 0; }
  cp::Endpoint frontend() const { return cp::Endpoint::loopback_v4(front_); }
  // bind() calls on the range's ports so far.
  long binds(cp::PortRange range) const {
    std::ifstream f(trace_);
    long n = 0;
    for (std::string line; std::getline(f, line);) {
      const auto at = line.find("sin_port=htons(");
      if (line.find("bind(") == std::string::npos || at == std::string::npos) continue;
      const long port = std::atol(line.c_str() + at + 15);
      if (port >= range.first() && port <= range.last()) ++n;
    }
    return n;
  }

 private:
  std::uint16_t front_ = 0;
  static std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      if (!std::getline(stat, line) || line.rfind(')') == std::string::npos) continue;
      std::istringstream rest(line.substr(line.rfind(')') + 2));
      char state;
      pid_t ppid = 0;
      if (rest >> state >> ppid && ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
  }
  std::string config_, trace_;
  pid_t strace_ = 0;
};

Row haproxy(cp::LoopbackServer& server, cp::PortRange range, int cycles) {
  HAProxy proxy(server, range);
  if (!proxy.running()) {
    std::fprintf(stderr, "rotation_storm: could not start strace + haproxy\n");
    return Row{0, cycles, 0, 0};
  }
  cp::Connector<cp::NoBind> plain;
  const int accepted_before = server.accepted();
  const long binds_before = proxy.binds(range);  // none: the frontend's port is not in the range
  Row r = measure("haproxy", cycles, [&] {
    const int accepted = server.accepted();
    auto s = plain.connect(proxy.frontend());
    if (!s) return false;
    // Made when HAProxy's connection reaches the server; failed when HAProxy gives up on us
    // (it closes our connection) or after 10 s.
    pollfd p{s->native_handle(), POLLIN, 0};
    for (int i = 0; i < 1000; ++i) {
      if (server.accepted() > accepted) break;
      if (::poll(&p, 1, 10) == 1) break;  // EOF or reset from HAProxy
    }
    const bool made = server.accepted() > accepted;
    const int closed = server.closed();
    s->close();  // we close first; HAProxy passes the close on and is first on its server side
    if (made) server.wait_closed(closed + 1, 2s);
    return made;
  });
  std::this_thread::sleep_for(100ms);
  r.binds = proxy.binds(range) - binds_before;
  (void)accepted_before;
  return r;
}

Row run_row(std::string_view row, cp::LoopbackServer& server, cp::PortRange range, int cycles) {
  if (row == "connpolicy") return connpolicy_rotation("connpolicy", server, range, cycles, {}, false);
  if (row == "reuse") return connpolicy_rotation("reuse", server, range, cycles, {.reuse_address = true}, false);
  if (row == "reset") return connpolicy_rotation("reset", server, range, cycles, {}, true);
  if (row == "nocensus") return connpolicy_rotation("nocensus", server, range, cycles, {.use_census = false}, false);
  if (row == "libcurl") return libcurl(server, range, cycles);
  if (row == "haproxy") return haproxy(server, range, cycles);
  std::fprintf(stderr, "rotation_storm: unknown row %.*s\n", static_cast<int>(row.size()), row.data());
  std::exit(2);
}

std::string row_name(std::string_view row) {
  if (row == "connpolicy") return "connpolicy FixedPortRotation (census, exact waits)";
  if (row == "reuse") return "connpolicy FixedPortRotation + reuse_address";
  if (row == "reset") return "connpolicy FixedPortRotation + close_reset()";
  if (row == "nocensus") return "connpolicy FixedPortRotation, use_census = false";
  if (row == "libcurl") return "libcurl LOCALPORT + LOCALPORTRANGE";
  return "HAProxy 2.6 TCP mode, source port range";
}

}  // namespace

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cp::LoopbackServer server;
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "restart-a" || mode == "restart-b") {
    if (argc < 4 || (mode == "restart-b" && argc < 5)) {
      std::fprintf(stderr, "usage: rotation_storm restart-a FIRST N | restart-b FIRST N ROW\n");
      return 2;
    }
    const int n = std::atoi(argv[3]);
    const auto range = cp::PortRange::make(std::atol(argv[2]), std::atol(argv[2]) + 2L * n - 1).value();
    if (mode == "restart-a") {  // a process that connects, exits, and leaves its TIME_WAITs behind
      const Row a = run_row("connpolicy", server, range, n);
      return a.made == n ? 0 : 1;
    }
    print("restart: " + row_name(argv[4]) + " (after process A)", run_row(argv[4], server, range, n));
    curl_global_cleanup();
    return 0;
  }
  const int ports = argc > 1 ? std::atoi(argv[1]) : 20;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  const int cycles = ports * rounds;
  std::vector<std::string> rows;
  for (int i = 3; i < argc; ++i) rows.emplace_back(argv[i]);
  if (rows.empty()) rows = {"connpolicy", "reuse", "reset", "libcurl"};
  std::printf("P2 rotation storm: %d sequential connections over %d local ports, client closes first, "
              "TCP timestamps %s; %s\n\n",
              cycles, ports, cp::tcp_timestamps_enabled().value_or(true) ? "on" : "off", curl_version());
  std::printf(
      "| client | made | failed | bind calls | binds per connection made | time s |\n|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (const auto& row : rows) {
    const auto range = cp::find_free_port_range(static_cast<std::size_t>(ports)).value();
    print(row_name(row), run_row(row, server, range, cycles));
  }
  curl_global_cleanup();
  return 0;
}
