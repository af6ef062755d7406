// TcpSocket where Asio code expects a TCP stream: its endpoints, options, shutdown and cancel are
// the socket's own; release() and hand_off() make it a plain asio::ip::tcp::socket, and the
// rotation is told what really happened to the port (released: the full cooldown; handed off:
// whatever the new owner says).
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "fd_count.hpp"
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Result = cp::expected<cp::asio::TcpSocket, cp::NetError>;
using test_support::open_fd_count;
using Client = cp::Connector<cp::FixedPortRotation, cp::NoRetry>;

namespace {
Client rotating_client(int ports) {
  const int first = test_support::free_port_block(ports);
  return Client{cp::FixedPortRotation{cp::PortRange::make(first, first + ports - 1).value(), {.use_census = false}}};
}

// One connect through the Asio driver, run to its end.
cp::asio::TcpSocket connect(asio::io_context& io, Client& client, const cp::Endpoint& to) {
  std::optional<Result> got;
  cp::asio::async_connect(io.get_executor(), client, to, [&](Result r) { got.emplace(std::move(r)); });
  io.restart();
  io.run_for(30s);
  REQUIRE(got);
  REQUIRE(*got);
  return std::move(**got);
}
}  // namespace

TEST_CASE("asio: TcpSocket has the stream's endpoints, options, shutdown and cancel", "[asio][tcp_socket]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server(cp::LoopbackServer::Mode::client_closes_first);
    Client client = rotating_client(2);
    asio::io_context io;
    cp::asio::TcpSocket s = connect(io, client, server.endpoint());

    CHECK(s.remote_endpoint().port() == server.endpoint().port());
    CHECK(s.remote_endpoint().address().to_string() == "127.0.0.1");
    CHECK(s.local_endpoint().port() >= client.bind_policy().range().first());
    CHECK(s.local_endpoint().port() <= client.bind_policy().range().last());

    asio::ip::tcp::no_delay nodelay;
    s.get_option(nodelay);
    CHECK_FALSE(nodelay.value());
    s.set_option(asio::ip::tcp::no_delay(true));
    s.get_option(nodelay);
    CHECK(nodelay.value());
    std::error_code ec;
    asio::socket_base::keep_alive keep_alive;
    CHECK_FALSE(s.set_option(asio::socket_base::keep_alive(true), ec));
    CHECK_FALSE(s.get_option(keep_alive, ec));
    CHECK(keep_alive.value());

    // A read the server never answers, cancelled: it ends with operation_aborted, the
    // connection still open.
    char byte = 0;
    std::error_code read_ec;
    s.async_read_some(asio::buffer(&byte, 1), [&](std::error_code e, std::size_t) { read_ec = e; });
    asio::post(io, [&] { s.cancel(); });
    io.restart();
    io.run_for(10s);
    CHECK(read_ec == asio::error::operation_aborted);
    CHECK(s.is_open());

    // Shut down for sending: a write fails now, and the server reads the end of the stream.
    s.shutdown(asio::ip::tcp::socket::shutdown_send);
    const std::string more = "more";
    std::error_code write_ec;
    asio::write(s, asio::buffer(more), write_ec);
    CHECK(write_ec);
    CHECK(server.wait_closed(1));  // it saw our FIN and closed its side
    CHECK_FALSE(s.close());
    CHECK(client.bind_policy().snapshot().in_use == 0);
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: TcpSocket::release gives a plain asio socket, and the rotation rests the port in full",
          "[asio][tcp_socket]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server(cp::LoopbackServer::Mode::client_closes_first);
    Client client = rotating_client(2);
    asio::io_context io;
    cp::asio::TcpSocket s = connect(io, client, server.endpoint());
    CHECK(client.bind_policy().snapshot().in_use == 1);

    asio::ip::tcp::socket plain = s.release();
    CHECK_FALSE(s.is_open());
    CHECK_FALSE(s.holds_lease());
    CHECK(plain.is_open());
    CHECK(plain.remote_endpoint().port() == server.endpoint().port());
    // Nobody will say when it closes: the port rests as after a FIN, however it ends.
    const auto snap = client.bind_policy().snapshot();
    CHECK(snap.in_use == 0);
    CHECK(snap.cooling == 1);
    CHECK_FALSE(s.close());  // the TcpSocket has nothing left to close
    CHECK(plain.is_open());  // and closing it did not touch the released socket
    plain.close();
  }
  CHECK(open_fd_count() == fds);
}

TEST_CASE("asio: TcpSocket::hand_off gives the socket and a ticket, and a reset close told to it rests no port",
          "[asio][tcp_socket]") {
  const auto fds = open_fd_count();
  {
    cp::LoopbackServer server(cp::LoopbackServer::Mode::client_closes_first);
    Client client = rotating_client(2);
    asio::io_context io;
    cp::asio::TcpSocket s = connect(io, client, server.endpoint());

    auto [plain, ticket] = s.hand_off();
    CHECK_FALSE(s.is_open());
    CHECK_FALSE(s.holds_lease());
    CHECK(plain.is_open());
    CHECK(ticket.holds_lease());
    CHECK(client.bind_policy().snapshot().in_use == 1);  // still lent: the new owner holds it

    std::error_code ec;
    plain.set_option(asio::socket_base::linger(true, 0), ec);
    REQUIRE_FALSE(ec);
    plain.close(ec);
    ticket.closed(cp::CloseKind::reset);  // the new owner's word: no TIME_WAIT
    const auto snap = client.bind_policy().snapshot();
    CHECK(snap.in_use == 0);
    CHECK(snap.cooling == 0);  // ready at once
  }
  CHECK(open_fd_count() == fds);
}
