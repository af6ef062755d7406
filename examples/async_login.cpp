// The seed's login client, as a coroutine: it logs in five times in a row from a fixed range of
// local ports, closing first each time (so each port it used sits in TIME_WAIT, the seed's
// 10048). FixedPortRotation never offers a port in TIME_WAIT: it moves through the range, and
// ExponentialRetry would wait on an Asio timer, exactly until the first port frees, if every port
// were resting. After connecting, everything is plain Asio: async_write, async_read_until, close.
// The last login goes by name, "login.internal", through a service registry of the example's own
// (a Resolver).
// (Binding through TIME_WAIT with reuse_address is not shown here: Linux then refuses a connect
// to the same server within a second of the TIME_WAIT's last segment, EADDRNOTAVAIL, and the
// rotation rests such a port for the whole TIME_WAIT.)
//
//   build/dev/examples/async_login
#include <asio.hpp>
#include <chrono>
#include <exception>
#include <iostream>
#include <stop_token>
#include <string>
#include <vector>
import connpolicy;
import connpolicy.asio;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using asio::ip::tcp;

using LoginClient = cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy>;

// A service registry: any type with this resolve() is a Resolver. The Asio driver asks it for AAAA
// and A at once, each on a helper thread (never the io thread), so it must be thread-safe: this
// one only reads.
struct Registry {
  cp::Endpoint login;
  cp::expected<std::vector<cp::Endpoint>, cp::NetError> resolve(const cp::HostPort& name, cp::Family family,
                                                                std::chrono::milliseconds, std::stop_token) const {
    if (name.host() != "login.internal")
      return cp::unexpected(
          cp::NetError(cp::Step::resolve, cp::LibraryError::no_address, name.to_string() + ": not in the registry"));
    if (family != login.family()) return std::vector<cp::Endpoint>{};  // no address of that family
    return std::vector<cp::Endpoint>{login.with_port(name.port())};
  }
};

// A login server on 127.0.0.1: answers "LOGIN name" with "welcome name", then waits for the
// client to close (so TIME_WAIT lands on the client, as in the seed).
asio::awaitable<void> session(tcp::socket socket) {
  try {
    std::string line;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(line), '\n', asio::use_awaitable);
    const std::string reply = "welcome " + line.substr(6);  // after "LOGIN "
    co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
    char byte;
    co_await socket.async_read_some(asio::buffer(&byte, 1), asio::use_awaitable);  // until EOF
  } catch (const std::exception&) {                                                // EOF or reset: the client is gone
  }
}
asio::awaitable<void> serve(tcp::acceptor& acceptor) {
  for (;;)
    co_spawn(acceptor.get_executor(), session(co_await acceptor.async_accept(asio::use_awaitable)), asio::detached);
}

asio::awaitable<int> log_in(LoginClient& client, cp::Endpoint server, int times) {
  const auto executor = co_await asio::this_coro::executor;
  const cp::HostPort by_name = cp::HostPort::from("login.internal", server.port()).value();
  int ok = 0;
  for (int i = 1; i <= times; ++i) {
    auto socket =
        i < times ? co_await cp::asio::async_connect(executor, client, server, asio::use_awaitable)
                  : co_await cp::asio::async_connect(executor, client, by_name, Registry{server}, asio::use_awaitable);
    if (!socket) {  // the same NetError as the blocking connect: step, addresses, errno, advice
      std::cout << "login " << i << ": " << socket.error().message() << "\n";
      continue;
    }
    const std::string request = "LOGIN alice\n";
    co_await asio::async_write(*socket, asio::buffer(request), asio::use_awaitable);
    std::string reply;
    co_await asio::async_read_until(*socket, asio::dynamic_buffer(reply), '\n', asio::use_awaitable);
    std::cout << "login " << i << (i == times ? " (by name)" : "") << " from local port "
              << socket->socket().local_endpoint().port() << ": " << reply;
    socket->close();  // we close first: this port rests in TIME_WAIT, and the rotation is told
    ++ok;
  }
  co_return ok;
}

int main() {
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  co_spawn(io, serve(acceptor), asio::detached);
  const auto server = cp::Endpoint::loopback_v4(acceptor.local_endpoint().port());

  // Five local ports the seed's client could have fixed, free a moment ago: one per login.
  auto ports = cp::find_free_port_range(5, cp::PortRange::make(20000, 29999).value());
  if (!ports) {
    std::cerr << ports.error().message() << "\n";
    return 1;
  }
  LoginClient client{cp::FixedPortRotation{*ports},
                     cp::ExponentialRetry{{.initial = 50ms, .max_delay = 1s, .max_attempts = 6}}};
  std::cout << "client ports " << ports->first() << "-" << ports->last() << ", server " << server.to_string() << "\n";

  int ok = 0;
  co_spawn(io, log_in(client, server, 5), [&](std::exception_ptr e, int n) {
    ok = n;
    if (e) std::cout << "the login coroutine failed\n";
    io.stop();
  });
  io.run_for(30s);
  std::cout << ok << " of 5 logins\n";
  return ok == 5 ? 0 : 1;
}
