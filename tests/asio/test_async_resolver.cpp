// The Asio driver with a Resolver of the user's own: its blocking resolve() runs on the driver's
// helper threads, AAAA and A at once, never on the io thread; its answer is connected to; a throw
// ends the connect with everything given back; one silent past its limit is answered with a
// timeout and asked to stop.
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "fd_count.hpp"
#include "events.hpp"
#include "io_thread_watch.hpp"
#include "eventually.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;
using test_support::eventually;
using test_support::open_fd_count;
using test_support::Recorder;

namespace {

// A resolver of the test's own: 127.0.0.1 (with the name's port) for A, nothing for AAAA, after
// `delay` (a stop ends the wait). It records each call's family and thread; with `meet`, the
// first call waits up to 2 s for the second to come, so the test sees whether both were asked at
// once (asked one after the other, the first would wait in vain).
struct ScriptedResolver {
  struct Record {
    std::mutex mutex;
    std::condition_variable_any changed;
    std::vector<std::pair<cp::Family, std::thread::id>> calls;
    bool met = false;       // the first call saw the second come while it waited
    bool saw_stop = false;  // a call's wait was ended by its stop_token
    int finished = 0;       // calls returned (or thrown)
  };
  std::shared_ptr<Record> record = std::make_shared<Record>();
  std::chrono::milliseconds delay{0};
  bool meet = false;
  bool throws = false;

  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort& name, cp::Family family,
                                                                std::chrono::milliseconds, std::stop_token stop) const {
    std::unique_lock lock(record->mutex);
    record->calls.emplace_back(family, std::this_thread::get_id());
    record->changed.notify_all();
    if (meet && record->calls.size() == 1)
      record->met = record->changed.wait_for(lock, 2s, [&] { return record->calls.size() >= 2; });
    if (delay > 0ms && !record->changed.wait_for(lock, stop, delay, [] { return false; }) && stop.stop_requested())
      record->saw_stop = true;
    ++record->finished;
    record->changed.notify_all();
    if (throws) throw std::runtime_error("resolver failed");
    if (family == cp::Family::ipv6) return std::vector<cp::Endpoint>{};
    return std::vector<cp::Endpoint>{cp::Endpoint::loopback_v4(name.port())};
  }
};
static_assert(cp::Resolver<ScriptedResolver>);

}  // namespace

TEST_CASE("asio: a custom resolver is asked AAAA and A at once, off the io thread, and its address is connected",
          "[asio][names][resolver]") {
  cp::LoopbackServer server;
  ScriptedResolver resolver{.meet = true};
  const auto record = resolver.record;
  cp::Connector<cp::NoBind> client;
  asio::io_context io;  // run by this thread only
  std::optional<Result> got;
  const cp::HostPort name = *cp::HostPort::from("service.internal", server.endpoint().port());
  cp::asio::async_connect(io.get_executor(), client, name, resolver, [&](Result r) { got.emplace(std::move(r)); });
  io.run_for(30s);
  REQUIRE(got);
  REQUIRE(*got);
  CHECK((*got)->socket().remote_endpoint().port() == server.endpoint().port());
  std::lock_guard lock(record->mutex);
  REQUIRE(record->calls.size() == 2);
  CHECK(record->met);  // the second family was asked while the first was still out
  CHECK(((record->calls[0].first == cp::Family::ipv6) != (record->calls[1].first == cp::Family::ipv6)));
  for (const auto& [family, thread] : record->calls) CHECK(thread != std::this_thread::get_id());
}

TEST_CASE("asio: a custom resolver that takes 300 ms never blocks the io thread", "[asio][names][resolver]") {
  cp::LoopbackServer server;
  ScriptedResolver resolver{.delay = 300ms};
  cp::Connector<cp::NoBind> client;
  asio::io_context io;  // one thread: this one
  std::optional<Result> got;
  const auto watch = test_support::watch_io_thread(io, [&](auto completed) {
    cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::from("slow.internal", server.endpoint().port()),
                            resolver, [&, completed](Result r) {
                              completed();
                              got.emplace(std::move(r));
                            });
  });
  REQUIRE(got);
  REQUIRE(*got);
  INFO(watch.said());
  CHECK(watch.late < 20ms);               // the io thread ran it while the resolver was being asked
  CHECK(watch.completed_after >= 300ms);  // the connect waited for the resolver's answer
}

TEST_CASE("asio: a custom resolver that throws: the exception leaves run() once everything is given back",
          "[asio][names][resolver]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    ScriptedResolver resolver{.throws = true};
    const auto record = resolver.record;
    std::vector<cp::AttemptEvent> events;
    cp::Connector<cp::NoBind, cp::NoRetry, cp::DefaultErrorPolicy, cp::NativeSystem, Recorder> client{
        {.observer = Recorder{&events}}};
    asio::io_context io;
    bool called = false;
    cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::from("broken.internal", server.endpoint().port()),
                            resolver, [&](Result) { called = true; });
    CHECK_THROWS_WITH(io.run_for(30s), "resolver failed");
    CHECK_FALSE(called);    // Asio's way for a handler's throw: run() throws, the handler is not called
    CHECK(events.empty());  // no attempt was made
    CHECK(eventually([&] {
      std::lock_guard lock(record->mutex);
      return record->finished == 2;
    }));
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: a custom resolver silent past its limit is answered with a timeout, then asked to stop",
          "[asio][names][resolver]") {
  ScriptedResolver resolver{.delay = 10s};  // breaks its word: ignores the limit it is given
  const auto record = resolver.record;
  cp::Connector<cp::NoBind> client{{.options = {.connect_timeout = 100ms}}};
  asio::io_context io;
  std::optional<Result> got;
  const auto start = std::chrono::steady_clock::now();
  cp::asio::async_connect(io.get_executor(), client, *cp::HostPort::from("silent.internal", 7000), resolver,
                          [&](Result r) { got.emplace(std::move(r)); });
  io.run_for(30s);
  REQUIRE(got);
  REQUIRE_FALSE(*got);
  INFO(got->error().message());
  CHECK(got->error().step() == cp::Step::resolve);
  CHECK_THAT(got->error().message(), Catch::Matchers::Contains("no answer within 100 ms"));
  CHECK(std::chrono::steady_clock::now() - start < 5s);  // not the resolver's 10 s
  // The round was put away with the operation: its lookups were asked to stop, and did.
  CHECK(eventually([&] {
    std::lock_guard lock(record->mutex);
    return record->finished == 2;
  }));
  std::lock_guard lock(record->mutex);
  CHECK(record->saw_stop);
}
