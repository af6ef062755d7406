// The Asio driver and a rotation's census: the census may take milliseconds (a survey walks every
// socket of the host), so it is asked on a helper thread and never on the io thread, and its
// answer still decides the port. A census that throws, a stop and a destroyed io_context while it
// is being asked each leave nothing lent and nothing open.
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "fd_count.hpp"
#include "loopback.hpp"
#include "io_thread_watch.hpp"
#include "eventually.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;
using test_support::eventually;
using test_support::open_fd_count;
using Client = cp::Connector<cp::FixedPortRotation, cp::NoRetry>;

namespace {
// A rotation of `n` ports whose census is `census` (on the system's clock), every port but the
// last held by "another program", so only the census's answer leads to the right port.
cp::FixedPortRotation held_but_last(cp::FakeCensus& census, const cp::Endpoint& server, int n = 3) {
  const int first = test_support::free_port_block(n);
  for (int p = first; p < first + n - 1; ++p)
    census.add(cp::Endpoint::loopback_v4(static_cast<std::uint16_t>(p)), server, cp::TcpState::established);
  return cp::FixedPortRotation{cp::PortRange::make(first, first + n - 1).value(), {.census = &census}};
}

}  // namespace

TEST_CASE("asio: a census that takes 300 ms never blocks the io thread, and its answer picks the port",
          "[asio][census]") {
  cp::LoopbackServer server;
  cp::FakeCensus census(cp::system_timer());
  census.while_surveying([] { std::this_thread::sleep_for(300ms); });  // a very busy host's survey
  Client client{held_but_last(census, server.endpoint())};
  asio::io_context io;  // one thread: this one
  std::optional<Result> got;
  const auto watch = test_support::watch_io_thread(io, [&](auto completed) {
    cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&, completed](Result r) {
      completed();
      got.emplace(std::move(r));
    });
  });
  REQUIRE(got);
  REQUIRE(*got);
  INFO(watch.said());
  CHECK(watch.late < 20ms);               // the io thread ran it while the census was being asked
  CHECK(watch.completed_after >= 300ms);  // the connect waited for the census's answer
  CHECK((*got)->socket().local_endpoint().port() == client.bind_policy().range().last());
  CHECK(census.surveys() == 1);
}

TEST_CASE("asio: a census that throws: the exception leaves run(), nothing lent and nothing open", "[asio][census]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::FakeCensus census(cp::system_timer());
    census.while_surveying([] { throw std::runtime_error("census failed"); });
    Client client{held_but_last(census, server.endpoint())};
    asio::io_context io;
    bool called = false;
    cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&](Result) { called = true; });
    CHECK_THROWS_WITH(io.run_for(30s), "census failed");
    CHECK_FALSE(called);
    CHECK(client.bind_policy().snapshot().in_use == 0);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: a stop while the census is asked ends the connect at once, cancelled, nothing lent",
          "[asio][census][cancel]") {
  cp::LoopbackServer server;
  cp::FakeCensus census(cp::system_timer());
  census.while_surveying([] { std::this_thread::sleep_for(300ms); });
  Client client{held_but_last(census, server.endpoint())};
  asio::io_context io;
  std::stop_source stop;
  std::optional<Result> got;
  const auto start = std::chrono::steady_clock::now();
  cp::asio::async_connect(io.get_executor(), client, server.endpoint(), stop.get_token(),
                          [&](Result r) { got.emplace(std::move(r)); });
  asio::steady_timer soon(io, 20ms);
  soon.async_wait([&](std::error_code) { stop.request_stop(); });
  io.run_for(30s);
  REQUIRE(got);
  REQUIRE_FALSE(*got);
  CHECK(got->error().condition() == cp::Errc::cancelled);
  CHECK(std::chrono::steady_clock::now() - start < 250ms);  // not held until the census's answer
  CHECK(eventually([&] { return census.surveys() == 1; }));
  CHECK(client.bind_policy().snapshot().in_use == 0);
}

TEST_CASE("asio: an io_context destroyed while the census is asked: the answer comes to nobody, nothing lent",
          "[asio][census]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server;
    cp::FakeCensus census(cp::system_timer());
    census.while_surveying([] { std::this_thread::sleep_for(100ms); });
    Client client{held_but_last(census, server.endpoint())};
    bool called = false;
    {
      asio::io_context io;
      for (int i = 0; i < 4; ++i)
        cp::asio::async_connect(io.get_executor(), client, server.endpoint(), [&](Result) { called = true; });
      io.run_for(10ms);
    }  // destroyed with the four operations waiting for the census
    CHECK_FALSE(called);
    CHECK(eventually([&] { return client.bind_policy().snapshot().surveys == 1 && census.surveys() == 1; }));
    std::this_thread::sleep_for(20ms);  // the helper thread's last step: the answer's link, cut
    CHECK(client.bind_policy().snapshot().in_use == 0);
  }
  CHECK(open_fd_count() == fds);
}
