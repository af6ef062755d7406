// free_port: the seed's getAvaliablePort helper, why it is racy, and the race-free form.
//
// The seed (a Windows client, error 10048) binds port 0 to learn a free port, closes the socket,
// and uses the port later. Between the close and the later bind anybody may take the port.
// PortReservation keeps the socket bound, so the port stays yours until you let it go or use it.
#include <cstdio>
#include <string>
#include <system_error>
import connpolicy;

namespace cp = connpolicy;

int main() {
  std::printf("connpolicy: finding a local port, as the seed's getAvaliablePort does\n\n");

  // 1. The seed's helper: bind port 0, read the port, close. The port is only *probably* free.
  auto port = cp::find_free_port(cp::Endpoint::loopback_v4(0));
  if (!port) {
    std::printf("find_free_port failed: %s\n", port.error().message().c_str());
    return 1;
  }
  std::printf("1. find_free_port()        -> %u (free a moment ago; anyone may take it now)\n", *port);

  // 2. The race-free form: the reservation holds the port while you need it.
  auto reservation = cp::PortReservation::reserve(cp::Endpoint::loopback_v4(0));
  if (!reservation) {
    std::printf("reserve failed: %s\n", reservation.error().message().c_str());
    return 1;
  }
  std::printf("2. PortReservation::reserve -> %s (held: the socket stays bound)\n",
              reservation->endpoint().to_string().c_str());

  // 3. While it is held, anybody else who binds that port fails, as the seed's client did when
  //    its fixed port was still taken. The error says what happened and what to do about it.
  auto again = cp::PortReservation::reserve(reservation->endpoint());
  if (again) {
    std::printf("unexpected: a second bind of a reserved port succeeded\n");
    return 1;
  }
  const cp::NetError& error = again.error();
  std::printf("3. binding it again fails:\n   %s\n", error.message().c_str());
  std::printf("   condition: %s; on Windows the same condition is error %d (%s)\n",
              std::string(cp::describe(error.condition())).c_str(), cp::winsock_code_of(cp::Errc::local_port_busy),
              cp::make_winsock_error(cp::winsock::eaddrinuse).message().c_str());
  std::printf("   error == Errc::local_port_busy: %s\n", error.code() == cp::Errc::local_port_busy ? "true" : "false");

  // 4. Released, the port is free for the next bind.
  reservation->release();
  auto after = cp::PortReservation::reserve(reservation->endpoint());
  std::printf("4. after release(), binding it again: %s\n", after ? "succeeds" : after.error().message().c_str());

  // 5. Errors for bad input say what is wrong.
  for (const char* text : {"127.0.0.1:99999", "localhost:80", "::1:80"}) {
    auto e = cp::Endpoint::parse(text);
    std::printf("5. Endpoint::parse(\"%s\"): %s\n", text, e ? e->to_string().c_str() : e.error().message().c_str());
  }
  return after ? 0 : 1;
}
