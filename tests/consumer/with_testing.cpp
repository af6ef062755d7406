// An outside project's program: the README's quick start, compiled against the installed package.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>  // importers include the std headers whose operators they use
import connpolicy;
import connpolicy.testing;

int main() {
  namespace cp = connpolicy;
  using namespace std::chrono_literals;

  // --- the README's quick start (a loopback server stands in for the login server) ---
  cp::LoopbackServer server;
  using LoginClient = cp::Connector<cp::FixedPortRotation, cp::ExponentialRetry, cp::DefaultErrorPolicy>;
  LoginClient client{cp::FixedPortRotation{cp::find_free_port_range(10).value()},
                     cp::ExponentialRetry{{.initial = 50ms, .max_delay = 2s, .max_attempts = 6}}};
  auto socket = client.connect(cp::Endpoint::parse(server.endpoint().to_string()).value());
  if (!socket) {
    std::cerr << socket.error().message() << "\n";
    return 1;
  }
  // the README's error, for real: nothing listens on a reserved port
  auto nobody = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0)).value();
  auto refused =
      cp::Connector<cp::NoBind, cp::ExponentialRetry>{cp::NoBind{},
                                                      cp::ExponentialRetry{{.initial = 1ms, .max_attempts = 3}}}
          .connect(nobody.endpoint());
  if (refused || refused.error().condition() != cp::Errc::connection_refused) return 2;
  std::cout << refused.error().message() << "\n";

  // --- the core and the fakes from outside ---
  auto e = cp::Endpoint::parse("[::1]:7000");
  if (!e || e->port() != 7000 || e->to_string() != "[::1]:7000") return 3;
  cp::FakeSystem fake;
  auto port = cp::find_free_port(cp::Endpoint::loopback_v4(0), fake);
  if (!port || *port != cp::FakeSystem::first_ephemeral_port || fake.open_handles() != 0) return 4;
  std::puts("consumer: ok");
  return 0;
}
