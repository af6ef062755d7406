// An outside project's program that uses the library alone (no test support): it must build from
// a plain find_package(connpolicy), add_subdirectory or FetchContent, and run.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>  // importers include the std headers whose operators they use
import connpolicy;

int main() {
  namespace cp = connpolicy;
  using namespace std::chrono_literals;

  // A port that is bound but not listening: a connect there is refused, for real, on loopback.
  auto nobody = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));
  if (!nobody) {
    std::cerr << nobody.error().message() << "\n";
    return 1;
  }
  using Client = cp::Connector<cp::NoBind, cp::ExponentialRetry, cp::DefaultErrorPolicy>;
  Client client{cp::NoBind{}, cp::ExponentialRetry{{.initial = 1ms, .max_attempts = 3}}};
  auto refused = client.connect(nobody->endpoint());
  if (refused || refused.error() != cp::Errc::connection_refused || refused.error().attempts() != 3) return 2;
  std::cout << refused.error().message() << "\n";

  auto e = cp::Endpoint::parse("[::1]:7000");
  if (!e || e->port() != 7000 || e->to_string() != "[::1]:7000") return 3;
  std::puts("consumer: ok");
  return 0;
}
