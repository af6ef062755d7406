// P6, the census's cost: how long KernelCensus::survey takes for a 1000-port range on a host
// with tens of thousands of TCP sockets, by netlink sock_diag (filtered in the kernel) and by
// the /proc/net/tcp fallback (which reads every socket); and how long KernelCensus::look_up
// takes for connections known by their four ends (the kernel's hash, no walk). scripts/bench.sh
// runs it in a network namespace of its own, so the sockets it makes are the namespace's only ones.
//
// Then what naming the owners costs (`connpolicy doctor` and `census` do it by default): one pass
// over /proc/PID/fd of every process, with a few hundred other processes beside this one.
//
//   census_cost [time_wait=20000] [established_pairs=5000] [rounds=200] [processes=300]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <csignal>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {

struct Timing {
  double median_us = 0, p99_us = 0;
  std::size_t found = 0;
};

template <class Ask>
Timing time_census(Ask ask, int rounds) {
  std::vector<double> us;
  Timing t;
  for (int i = 0; i < rounds; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto c = ask();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    if (!c) {
      std::fprintf(stderr, "census_cost: %s\n", c.error().message().c_str());
      std::exit(1);
    }
    t.found = c->uses.size();
  }
  std::ranges::sort(us);
  t.median_us = us[us.size() / 2];
  t.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  return t;
}

// `n` processes that hold 20 descriptors each (of /dev/null, none of ours) and sleep until killed:
// the other programs of a host, whose descriptors an owners pass reads too.
std::vector<pid_t> other_processes(int n) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {  // async-signal-safe calls only: the parent has threads
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      for (int f = 0; f < 20; ++f) ::open("/dev/null", O_RDONLY);
      for (;;) ::pause();
    }
    if (pid > 0) pids.push_back(pid);
  }
  return pids;
}

}  // namespace

int main(int argc, char** argv) {
  const int time_waits = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int pairs = argc > 2 ? std::atoi(argv[2]) : 5000;
  const int rounds = std::max(1, argc > 3 ? std::atoi(argv[3]) : 200);
  const int processes = std::max(0, argc > 4 ? std::atoi(argv[4]) : 300);
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;  // the established pairs need two descriptors each
  setrlimit(RLIMIT_NOFILE, &files);

  std::fprintf(stderr, "census_cost: making %d TIME_WAIT and %d established pairs ...\n", time_waits, pairs);
  cp::LoopbackServer closing;  // the client closes first: TIME_WAIT on our (kernel-chosen) ports
  cp::Connector<cp::NoBind> plain;
  int made_waits = 0;
  for (int i = 0; i < time_waits; ++i) made_waits += plain.connect(closing.endpoint()) ? 1 : 0;
  closing.wait_closed(made_waits, 10s);
  // Some of them inside the surveyed range, so the census has something to find.
  const auto range = cp::PortRange::make(20000, 20999).value();
  cp::Connector<cp::FixedPortRotation> in_range{cp::FixedPortRotation{range, {.reuse_address = true}}};
  int in_range_waits = 0;
  std::vector<cp::SocketPair> known;  // what look_up asks about: connections this process closed
  for (int i = 0; i < 500; ++i)
    if (auto s = in_range.connect(closing.endpoint())) {
      ++in_range_waits;
      known.push_back({s->local_endpoint().value(), closing.endpoint()});
    }
  closing.wait_closed(made_waits + in_range_waits, 10s);

  cp::LoopbackServer holding(cp::LoopbackServer::Mode::client_closes_first);
  std::vector<cp::Socket> held;
  held.reserve(static_cast<std::size_t>(pairs));
  for (int i = 0; i < pairs; ++i)
    if (auto s = plain.connect(holding.endpoint())) held.push_back(std::move(*s));

  // Everything in the namespace, by the full /proc census (every port).
  cp::KernelCensus proc(cp::CensusMethod::proc_net_tcp), netlink(cp::CensusMethod::netlink);
  const auto everything = proc.survey(cp::PortRange::make(1, 65535).value());
  const std::size_t sockets = everything ? everything->uses.size() : 0;

  const Timing n = time_census([&] { return netlink.survey(range); }, rounds);
  const Timing p = time_census([&] { return proc.survey(range); }, rounds);
  const std::span<const cp::SocketPair> one(known.data(), std::min<std::size_t>(known.size(), 1));
  const std::span<const cp::SocketPair> hundred(known.data(), std::min<std::size_t>(known.size(), 100));
  const Timing l1 = time_census([&] { return netlink.look_up(one); }, rounds);
  const Timing l100 = time_census([&] { return netlink.look_up(hundred); }, rounds);
  // What doctor asks: every port; and the same with the owners named (one pass over /proc).
  const auto all_ports = cp::PortRange::make(1, 65535).value();
  const auto others = other_processes(processes);
  const Timing doctor = time_census([&] { return netlink.survey(all_ports); }, rounds / 10 + 1);
  std::size_t named = 0, looked_at = 0;
  const Timing owners = time_census(
      [&]() -> cp::expected<cp::Census, cp::NetError> {
        auto c = netlink.survey(all_ports);
        if (!c) return c;
        const auto found = cp::find_socket_owners(c->uses);
        named = 0;
        for (const auto& use : c->uses) named += found.of(use).pid ? 1 : 0;
        looked_at = found.processes;
        return c;
      },
      rounds / 10 + 1);
  for (pid_t pid : others) ::kill(pid, SIGKILL);
  for (pid_t pid : others) ::waitpid(pid, nullptr, 0);

  std::printf("P6 census of a 1000-port range (%s) among %zu TCP sockets (%d TIME_WAIT made, %zu held open, "
              "%d TIME_WAIT in the range); %d surveys each\n\n",
              range.to_string().c_str(), sockets, made_waits + in_range_waits, 2 * held.size(), in_range_waits, rounds);
  std::printf("| census | sockets found in the range | median µs | p99 µs |\n|---|---|---|---|\n");
  std::printf("| netlink sock_diag (kernel-filtered) | %zu | %.0f | %.0f |\n", n.found, n.median_us, n.p99_us);
  std::printf("| /proc/net/tcp + tcp6 (fallback) | %zu | %.0f | %.0f |\n", p.found, p.median_us, p.p99_us);
  std::printf("| look_up of %zu known connection (netlink, no walk) | %zu | %.0f | %.0f |\n", one.size(), l1.found,
              l1.median_us, l1.p99_us);
  std::printf("| look_up of %zu known connections (netlink, no walk) | %zu | %.0f | %.0f |\n", hundred.size(),
              l100.found, l100.median_us, l100.p99_us);
  std::printf("\nWhat doctor asks, every port, before and after naming owners (%zu processes looked at, %d of "
              "them others holding 20 descriptors each; this one holds %zu sockets); %d rounds each\n\n",
              looked_at, processes, 2 * held.size(), rounds / 10 + 1);
  std::printf("| doctor's census | sockets | with an owner named | median µs | p99 µs |\n|---|---|---|---|---|\n");
  std::printf("| every port (netlink), no owners (--no-owners) | %zu | - | %.0f | %.0f |\n", doctor.found,
              doctor.median_us, doctor.p99_us);
  std::printf("| every port (netlink) + find_socket_owners (one pass over /proc) | %zu | %zu | %.0f | %.0f |\n",
              owners.found, named, owners.median_us, owners.p99_us);
  return 0;
}
