// An outside project's program that uses the Asio driver from the installed package (component
// asio): a connect that is refused, retried on Asio's timer, then reported, on one io_context.
#include <asio.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
import connpolicy;
import connpolicy.asio;

int main() {
  namespace cp = connpolicy;
  using namespace std::chrono_literals;
  auto nobody = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));  // bound, not listening
  if (!nobody) {
    std::cerr << nobody.error().message() << "\n";
    return 1;
  }
  cp::Connector<cp::NoBind, cp::FixedDelayRetry> client{cp::NoBind{},
                                                        cp::FixedDelayRetry{{.delay = 5ms, .max_attempts = 3}}};
  asio::io_context io;
  std::optional<cp::expected<cp::asio::TcpSocket, cp::NetError>> got;
  cp::asio::async_connect(io.get_executor(), client, nobody->endpoint(), [&](auto r) { got.emplace(std::move(r)); });
  io.run_for(10s);
  if (!got || *got || got->error() != cp::Errc::connection_refused || got->error().attempts() != 3) return 2;
  std::cout << got->error().message() << "\nconsumer (asio): ok\n";
  return 0;
}
