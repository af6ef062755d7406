// P2, rotation storm: rounds x K reconnects over K local ports, the client closing first (so
// each used port sits in TIME_WAIT), for connpolicy's FixedPortRotation (plain, reuse_address,
// reset close) and libcurl (CURLOPT_LOCALPORT + CURLOPT_LOCALPORTRANGE, CURLOPT_FORBID_REUSE,
// CURLOPT_CONNECT_ONLY), in one run. bind() is interposed, so both are counted the same way.
//
//   rotation_storm [ports=20] [rounds=10]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <curl/curl.h>
#include <dlfcn.h>
#include <sys/socket.h>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
std::atomic<long> bind_calls{0};
}

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

void print(const char* name, const Row& r) {
  std::printf("| %s | %d | %d | %ld | %.2f | %.1f |\n", name, r.made, r.failed, r.binds,
              r.made ? static_cast<double>(r.binds) / r.made : 0.0, r.ms);
}

template <class Body>
Row measure(int cycles, Body body) {
  Row r;
  bind_calls = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < cycles; ++i) (body() ? r.made : r.failed)++;
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  r.binds = bind_calls.load();
  return r;
}

Row connpolicy_rotation(cp::LoopbackServer& server, int ports, int cycles, cp::RotationOptions options, bool reset) {
  cp::Connector<cp::FixedPortRotation> client{cp::FixedPortRotation{cp::find_free_port_range(static_cast<std::size_t>(ports)).value(), options}};
  return measure(cycles, [&] {
    auto s = client.connect(server.endpoint());
    if (!s) return false;
    const int closed = server.closed();
    if (reset) s->close_reset(); else s->close();
    server.wait_closed(closed + 1, 1s);  // the server closes after us: our port is in TIME_WAIT
    return true;
  });
}

Row libcurl(cp::LoopbackServer& server, int ports, int cycles) {
  const auto range = cp::find_free_port_range(static_cast<std::size_t>(ports)).value();
  const std::string url = "http://" + server.endpoint().to_string() + "/";
  return measure(cycles, [&] {
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(curl, CURLOPT_LOCALPORT, static_cast<long>(range.first()));
    curl_easy_setopt(curl, CURLOPT_LOCALPORTRANGE, static_cast<long>(ports));
    const int closed = server.closed();
    const bool ok = curl_easy_perform(curl) == CURLE_OK;
    curl_easy_cleanup(curl);  // closes the socket: the client first
    if (ok) server.wait_closed(closed + 1, 1s);
    return ok;
  });
}

int timestamps() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_timestamps");
  int v = -1;
  f >> v;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const int ports = argc > 1 ? std::atoi(argv[1]) : 20;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  const int cycles = ports * rounds;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cp::LoopbackServer server;
  std::printf("P2 rotation storm: %d sequential connections over %d local ports, client closes first, "
              "TCP timestamps %s; %s\n\n", cycles, ports, timestamps() == 1 ? "on" : "off", curl_version());
  std::printf("| client | made | failed | bind calls | binds per connection made | time ms |\n|---|---|---|---|---|---|\n");
  print("connpolicy FixedPortRotation", connpolicy_rotation(server, ports, cycles, {}, false));
  print("connpolicy FixedPortRotation + reuse_address", connpolicy_rotation(server, ports, cycles, {.reuse_address = true}, false));
  print("connpolicy FixedPortRotation + close_reset()", connpolicy_rotation(server, ports, cycles, {}, true));
  print("libcurl LOCALPORT + LOCALPORTRANGE", libcurl(server, ports, cycles));
  curl_global_cleanup();
  return 0;
}
