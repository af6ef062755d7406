// seed_story: the seed's Windows bug (error 10048), reproduced on Linux loopback, then each
// mitigation side by side.
//
// A client binds a fixed local port so the server can recognise it. It connects, closes first,
// and connects again: the old connection still holds the port in TIME_WAIT, and bind() fails.
// Then the three mitigations the seed proposes, as connpolicy policies, each running the same 20
// reconnect cycles (client closes first, then the server), and a table of what each achieved.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>
import connpolicy;
import connpolicy.testing; // LoopbackServer: the peer for this demo

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {

constexpr int cycles = 20;

struct Tally {
  int tried = 0, made = 0, binds = 0, waits = 0;
  double ms = 0;
  std::string last_error;
};

// Counts what each attempt did: the observer is how an application would log or meter this.
struct Meter {
  Tally* tally;
  void operator()(const cp::AttemptEvent& e) const {
    ++tally->tried;
    const bool bind_called =
        e.local && (e.connected() || (e.step != cp::Step::socket && e.step != cp::Step::set_option));
    if (bind_called) ++tally->binds;
    if (e.action == cp::Action::retry) ++tally->waits;
  }
};

// Runs `cycles` reconnects: connect, close (client first), wait for the server to close too.
template <class Connector>
Tally run(Connector& client, cp::LoopbackServer& server, bool reset_close = false, int count = cycles) {
  Tally& t = *client.observer().tally;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    auto socket = client.connect(server.endpoint());
    if (!socket) {
      t.last_error = socket.error().message();
      continue;
    }
    ++t.made;
    const int closed_before = server.closed();
    if (reset_close)
      socket->close_reset();
    else
      socket->close();
    server.wait_closed(closed_before + 1, 1s);  // as in the seed: the server closes after us
  }
  t.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return t;
}

// "time" includes waiting for the server to close each connection after the client.
void row(const char* what, const Tally& t) {
  std::printf("| %-44s | %5d | %4d | %6d | %10d | %5d | %8.1f |\n", what, t.tried, t.made, cycles - t.made, t.binds,
              t.waits, t.ms);
}

template <class Bind, class Retry = cp::NoRetry>
using Metered = cp::Connector<Bind, Retry, cp::DefaultErrorPolicy, cp::NativeSystem, Meter>;

}  // namespace

int main() {
  cp::LoopbackServer server;
  std::printf("connpolicy seed_story: Winsock error 10048 (WSAEADDRINUSE), on Linux loopback\n");
  std::printf("server: %s (it closes after the client, so TIME_WAIT lands on the client)\n\n",
              server.endpoint().to_string().c_str());

  // --- 1. The seed's bug, for real --------------------------------------------------------
  const auto fixed_port = cp::find_free_port_range(1).value().first();
  Tally bug_tally;
  Metered<cp::FixedPort> seed_client{{.bind = cp::FixedPort::make(fixed_port).value(), .observer = Meter{&bug_tally}}};
  {
    auto first = seed_client.connect(server.endpoint());
    if (!first) {
      std::printf("first connect failed: %s\n", first.error().message().c_str());
      return 1;
    }
    std::printf("1. the seed's client binds port %u, connects, and closes first.\n", fixed_port);
  }
  server.wait_closed(1, 1s);
  auto again = seed_client.connect(server.endpoint());
  if (again) {
    std::printf("unexpected: the reconnect from port %u succeeded (is TIME_WAIT disabled?)\n", fixed_port);
    return 1;
  }
  std::printf("2. it connects again at once, from the same port, and fails:\n   %s\n", again.error().message().c_str());
  std::printf("   On Windows the same failure is error %d (WSAEADDRINUSE), at bind() or at connect().\n",
              cp::winsock_code_of(again.error().condition()));
  std::printf("   error.code() == Errc::local_port_busy: %s (EADDRINUSE here, 10048 there)\n\n",
              again.error().code() == cp::Errc::local_port_busy ? "true" : "false");
  server.wait_closed(1, 1s);

  // --- 2. The mitigations, side by side ---------------------------------------------------
  std::printf("3. %d reconnect cycles each (client closes first; TCP timestamps: %s):\n\n", cycles,
              cp::tcp_timestamps_enabled().value_or(false) ? "on" : "off");
  std::printf("| %-44s | %5s | %4s | %6s | %10s | %5s | %8s |\n", "policy", "tried", "made", "failed", "bind calls",
              "waits", "time ms");
  std::printf("|%s|-------|------|--------|------------|-------|----------|\n", std::string(46, '-').c_str());

  std::vector<std::pair<std::string, std::string>> notes;
  {
    Tally t;
    Metered<cp::FixedPort> c{
        {.bind = cp::FixedPort::make(cp::find_free_port_range(1).value().first()).value(), .observer = Meter{&t}}};
    row("FixedPort (the seed's bug)", run(c, server));
    notes.emplace_back("FixedPort", t.last_error);
  }
  {
    Tally t;
    Metered<cp::EphemeralBind> c{{.bind = cp::EphemeralBind{}, .observer = Meter{&t}}};
    row("EphemeralBind (fix 1: bind port 0)", run(c, server));
  }
  {
    Tally t;
    const auto range = cp::find_free_port_range(10).value();
    Metered<cp::FixedPortRotation, cp::ExponentialRetry> c{
        {.bind = cp::FixedPortRotation{range},
         .retry = cp::ExponentialRetry{{.initial = 50ms, .max_attempts = 4, .deadline = 2s}},
         .observer = Meter{&t}}};
    row("FixedPortRotation, 10 ports (fix 2: rebind)", run(c, server));
    notes.emplace_back("FixedPortRotation", t.last_error);
  }
  {
    // Fix 3: no bind, retry connect(). This server is restarting: it is back after 300 ms, so
    // the first connect is refused a few times and backs off until it succeeds.
    Tally t;
    const auto port = cp::find_free_port(cp::Endpoint::loopback_v4(0)).value();
    std::optional<cp::LoopbackServer> restarted;
    std::jthread restart([&] {
      std::this_thread::sleep_for(300ms);
      restarted.emplace(cp::LoopbackServer::Mode::client_closes_first, port);
    });
    Metered<cp::NoBind, cp::ExponentialRetry> c{
        {.retry =
             cp::ExponentialRetry{
                 {.initial = 20ms, .max_delay = 200ms, .max_attempts = 12, .jitter = cp::Jitter::equal}},
         .observer = Meter{&t}}};
    const auto start = std::chrono::steady_clock::now();
    auto first = c.connect(cp::Endpoint::loopback_v4(port));
    restart.join();
    if (first) {
      first->close();
      restarted->wait_closed(1, 1s);
      run(c, *restarted, false, cycles - 1);
      ++t.made;
    } else {
      t.last_error = first.error().message();
    }
    t.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    row("NoBind + ExponentialRetry (fix 3: retry)", t);
    notes.emplace_back("NoBind + ExponentialRetry", t.last_error);
  }
  {
    Tally t;
    Metered<cp::FixedPort> c{
        {.bind = cp::FixedPort::make(cp::find_free_port_range(1).value().first(), {.reuse_address = true}).value(),
         .observer = Meter{&t}}};
    row("FixedPort + reuse_address", run(c, server));
  }
  {
    Tally t;
    Metered<cp::FixedPortRotation> c{
        {.bind = cp::FixedPortRotation{cp::find_free_port_range(10).value(), {.reuse_address = true}},
         .observer = Meter{&t}}};
    row("FixedPortRotation + reuse_address", run(c, server));
  }
  {
    Tally t;
    Metered<cp::FixedPortRotation> c{
        {.bind = cp::FixedPortRotation{cp::find_free_port_range(10).value()}, .observer = Meter{&t}}};
    row("FixedPortRotation + close_reset()", run(c, server, /*reset_close=*/true));
  }

  std::printf("\nWhy the failures:\n");
  for (const auto& [who, error] : notes)
    if (!error.empty()) std::printf("- %s: %s\n", who.c_str(), error.c_str());
  std::printf("\nRead it so: FixedPort cannot reconnect for 60 s (Windows: 120-240 s). EphemeralBind and NoBind never\n"
              "collide. A 10-port rotation makes 10 connections at once, then knows every port is in TIME_WAIT and\n"
              "says when the first frees instead of hammering bind(); with reuse_address (needs TCP timestamps) or a\n"
              "reset close it goes on at once, one bind per connection.\n");
  return 0;
}
