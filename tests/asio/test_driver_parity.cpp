// Parity: one table of scenarios, each run through the blocking Connector and through the Asio
// driver with the same connector type, policies and observer, on real sockets in a network
// namespace of the test's own (ctest runs [netns] under `unshare -n`). Both must give the same
// observer stream (every field but the times) and the same result, and give back every
// descriptor. It is what a user switching drivers relies on, and what a change to either driver
// (or to the decision core between them) must keep.
//
// Not in the table: virtual time (the Asio driver waits on Asio's own clock and sockets, so it
// cannot run over FakeSystem and a ManualTimer: the stops and delays here are real, and sized well
// apart).
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>
#include "fd_count.hpp"
#include "netns.hpp"
import connpolicy;
import connpolicy.testing;
import connpolicy.asio;
#include "black_hole.hpp"
#include "fake_name_server.hpp"
#include "loopback.hpp"
#include "late_aaaa.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {

enum class Driver { blocking, asio };

// An observer that records, and may throw or stop the operation at its n-th event (1-based).
struct ScriptedObserver {
  std::vector<cp::AttemptEvent>* events;
  int throw_at = 0;
  int stop_at = 0;
  std::stop_source* stop = nullptr;
  void operator()(const cp::AttemptEvent& e) const {
    events->push_back(e);
    const int n = static_cast<int>(events->size());
    if (n == stop_at && stop) stop->request_stop();
    if (n == throw_at) throw std::runtime_error("observer failed");
  }
};

template <class Bind, class Retry>
using Client = cp::Connector<Bind, Retry, cp::DefaultErrorPolicy, cp::NativeSystem, ScriptedObserver>;

// Everything of an event but its times (which differ by microseconds between drivers).
std::string parity_line(const cp::AttemptEvent& e) {
  std::string s = std::to_string(e.attempt) + " " + e.remote.to_string() + " from " +
                  (e.local ? e.local->to_string() : std::string("kernel")) + " " + std::string(cp::to_string(e.step)) +
                  " " + (e.connected() ? std::string("connected") : e.error.message());
  if (e.action)
    s += " -> " + std::string(cp::to_string(*e.action)) + " after " +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count()) + " ms";
  if (e.gave_up) s += " (gave up: " + std::string(cp::to_string(*e.gave_up)) + ")";
  if (e.abandoned) s += " (abandoned)";
  if (!e.attempted) s += " (no attempt)";
  return s;
}

// A name looked up through a resolver of the scenario's own (not SystemResolver).
template <class R>
struct NameThrough {
  cp::HostPort name;
  R resolver;
};

// A resolver that throws from resolve(), as a buggy cache or registry client might.
struct ThrowingResolver {
  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort&, cp::Family,
                                                                std::chrono::milliseconds, std::stop_token) const {
    throw std::runtime_error("resolver failed");
  }
};

template <class T>
constexpr bool is_name_through = false;
template <class R>
constexpr bool is_name_through<NameThrough<R>> = true;

struct Outcome {
  std::vector<std::string> events;
  std::string result;
};

// One connect through `driver`, with a stop after `stop_after` when given; the result in words:
// "connected over IPv4", the NetError's message, or "threw: ..." when a hook's exception came out.
template <class Bind, class Retry, class Target>
Outcome run(Driver driver, Client<Bind, Retry>& client, const Target& target, std::stop_source& stop,
            std::optional<std::chrono::milliseconds> stop_after = std::nullopt) {
  std::vector<cp::AttemptEvent>& events = *client.observer().events;
  events.clear();
  Outcome out;
  const auto connected = [](bool v6) { return std::string("connected over ") + (v6 ? "IPv6" : "IPv4"); };
  if (driver == Driver::blocking) {
    std::jthread stopper;
    if (stop_after)
      stopper = std::jthread([&, after = *stop_after](std::stop_token cancel) {
        const auto until = std::chrono::steady_clock::now() + after;
        while (!cancel.stop_requested() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
        if (!cancel.stop_requested()) stop.request_stop();
      });
    try {
      auto s = [&] {
        if constexpr (std::is_same_v<Target, cp::HostPort>)
          return client.connect(target, cp::SystemResolver{}, stop.get_token());
        else if constexpr (is_name_through<Target>)
          return client.connect(target.name, target.resolver, stop.get_token());
        else
          return client.connect(target, stop.get_token());
      }();
      out.result = s ? connected(s->remote_endpoint().value().is_v6()) : s.error().message();
    } catch (const std::exception& e) {
      out.result = std::string("threw: ") + e.what();
    }
  } else {
    asio::io_context io;
    std::optional<cp::expected<cp::asio::TcpSocket, cp::NetError>> got;
    if constexpr (is_name_through<Target>)
      cp::asio::async_connect(io.get_executor(), client, target.name, target.resolver, stop.get_token(),
                              [&](auto r) { got.emplace(std::move(r)); });
    else
      cp::asio::async_connect(io.get_executor(), client, target, stop.get_token(),
                              [&](auto r) { got.emplace(std::move(r)); });
    asio::steady_timer stopper(io);
    if (stop_after) {
      stopper.expires_after(*stop_after);
      stopper.async_wait([&](std::error_code ec) {
        if (!ec) stop.request_stop();
      });
    }
    try {
      io.run_for(20s);
      if (!got)
        out.result = "no completion";
      else
        out.result = *got ? connected((*got)->socket().remote_endpoint().address().is_v6()) : got->error().message();
    } catch (const std::exception& e) {
      out.result = std::string("threw: ") + e.what();
    }
  }
  for (const cp::AttemptEvent& e : events) out.events.push_back(parity_line(e));
  return out;
}

using test_support::refusing_endpoint;

// Each driver's outcome for one environment: `attempt(driver)` makes a fresh connector (and
// stop_source) and connects with it.
using Both = std::pair<Outcome, Outcome>;
template <class Attempt>
Both both(Attempt attempt) {
  Outcome blocking = attempt(Driver::blocking);
  return {std::move(blocking), attempt(Driver::asio)};
}

// "late.test": A (127.0.0.1, black-holed) at once, AAAA (::1, a listener) `aaaa_after` late.
Both race_with_aaaa_late(std::chrono::milliseconds aaaa_after) {
  const test_support::LateAaaa late(aaaa_after);
  REQUIRE(late.ok());
  const auto name = late.name();
  return both([&](Driver d) {
    std::vector<cp::AttemptEvent> events;
    std::stop_source stop;
    Client<cp::NoBind, cp::NoRetry> client{{.options = {.connect_timeout = 5s}, .observer = {&events}}};
    return run(d, client, name, stop);
  });
}

struct Scenario {
  const char* name;
  const char* result_says;  // what the result must say, so that two equal failures cannot pass
  bool has_events;          // false: it ends before any attempt is decided (a lookup stopped)
  std::function<Both()> run;
};

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> table{
      {"refused, retried twice, then given up", "refused", true,
       [] {
         const auto to = refusing_endpoint();
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::FixedDelayRetry> client{
               {.retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 3}}, .observer = {&events}}};
           return run(d, client, to, stop);
         });
       }},
      {"a black hole: the attempt times out", "no answer within 100 ms", true,
       [] {
         auto hole = test_support::black_hole();
         REQUIRE_FALSE(hole.fillers.empty());
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::NoRetry> client{{.options = {.connect_timeout = 100ms}, .observer = {&events}}};
           return run(d, client, hole.endpoint, stop);
         });
       }},
      {"a race: AAAA 30 ms late is waited for", "connected over IPv6", true, [] { return race_with_aaaa_late(30ms); }},
      {"a race: AAAA 300 ms late joins the race IPv4 began", "connected over IPv6", true,
       [] { return race_with_aaaa_late(300ms); }},
      {"every port of the rotation cooling", "cooling down", true,
       [] {
         cp::LoopbackServer server;
         const int port = test_support::free_port_block(1);
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::FixedPortRotation, cp::NoRetry> client{
               {.bind = cp::FixedPortRotation{cp::PortRange::make(port, port).value(),
                                              {.cooldown = 10s, .seed = 1, .use_census = false}},
                .observer = {&events}}};
           // The port's socket closed normally (told, without a real socket: no TIME_WAIT for the
           // other driver's turn): it cools for 10 s.
           client.bind_policy().plan(server.endpoint()).value().lease->on_close(cp::CloseKind::normal);
           Outcome out = run(d, client, server.endpoint(), stop);
           CHECK(client.bind_policy().snapshot().in_use == 0);
           return out;
         });
       }},
      {"a stop mid-connect", "cancel", true,
       [] {
         auto hole = test_support::black_hole();
         REQUIRE_FALSE(hole.fillers.empty());
         const int first = test_support::free_port_block(2);
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::FixedPortRotation, cp::NoRetry> client{
               {.bind = cp::FixedPortRotation{cp::PortRange::make(first, first + 1).value(),
                                              {.seed = 1, .use_census = false}},
                .options = {.connect_timeout = 5s},
                .observer = {&events}}};
           Outcome out = run(d, client, hole.endpoint, stop, 50ms);
           const auto snap = client.bind_policy().snapshot();
           CHECK(snap.in_use == 0);
           CHECK(snap.cooling == 0);  // closed with a reset: no TIME_WAIT on a port the ring calls ready
           return out;
         });
       }},
      {"a stop mid-wait", "while waiting to retry", true,
       [] {
         const auto to = refusing_endpoint();
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::FixedDelayRetry> client{
               {.retry = cp::FixedDelayRetry{{.delay = 5s, .max_attempts = 3}}, .observer = {&events}}};
           return run(d, client, to, stop, 50ms);
         });
       }},
      {"a stop mid-lookup", "cancel", false,
       [] {
         test_support::FakeNameServer dns("slow.test", {{{127, 0, 0, 1}}, 3s},
                                          {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, 3s});
         REQUIRE(dns.ok());
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::NoRetry> client{{.options = {.connect_timeout = 5s}, .observer = {&events}}};
           return run(d, client, *cp::HostPort::from("slow.test", 7000), stop, 50ms);
         });
       }},
      {"an observer that throws", "threw: observer failed", true,
       [] {
         const auto to = refusing_endpoint();
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::FixedDelayRetry> client{
               {.retry = cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 3}},
                .observer = {.events = &events, .throw_at = 1}}};
           return run(d, client, to, stop);
         });
       }},
      {"a resolver that throws", "threw: resolver failed", false,
       [] {
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::NoRetry> client{{.observer = {&events}}};
           return run(d, client, NameThrough<ThrowingResolver>{*cp::HostPort::from("broken.test", 7000), {}}, stop);
         });
       }},
      {"an observer that stops the operation", "while waiting to retry", true,
       [] {
         const auto to = refusing_endpoint();
         return both([&](Driver d) {
           std::vector<cp::AttemptEvent> events;
           std::stop_source stop;
           Client<cp::NoBind, cp::FixedDelayRetry> client{
               {.retry = cp::FixedDelayRetry{{.delay = 5s, .max_attempts = 3}},
                .observer = {.events = &events, .stop_at = 1, .stop = &stop}}};
           return run(d, client, to, stop);
         });
       }},
  };
  return table;
}

}  // namespace

TEST_CASE("parity: each scenario gives the same observer stream and result through both drivers",
          "[.][netns][parity]") {
  REQUIRE(test_support::in_loopback_only_namespace());
  REQUIRE(test_support::dual_test_hosts());  // this process's resolv.conf: 127.0.0.1 (FakeNameServer)
  for (const Scenario& s : scenarios()) {
    INFO("scenario: " << s.name);
    const auto fds = test_support::open_fd_count();
    const auto [blocking, asio] = s.run();
    INFO("blocking: " << blocking.result << "\nasio:     " << asio.result);
    CHECK(blocking.events == asio.events);
    CHECK(blocking.result == asio.result);
    CHECK_THAT(blocking.result, Catch::Matchers::Contains(s.result_says));
    CHECK(blocking.events.empty() != s.has_events);
    // A stopped lookup's getaddrinfo still holds its UDP socket until resolv.conf's timeout (1 s
    // here): the descriptors come back on their own, within a few seconds.
    for (int i = 0; i < 500 && test_support::open_fd_count() != fds; ++i) std::this_thread::sleep_for(10ms);
    CHECK(test_support::open_fd_count() == fds);
  }
}
