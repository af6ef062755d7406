// NetError: the condition it reports (refined by step) and the message a person acts on.
#include <catch2/catch.hpp>
#include <optional>
#include <cstddef>
#include <cerrno>
#include <string>
import connpolicy;

namespace cp = connpolicy;
using Catch::Matchers::Contains;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
}  // namespace

TEST_CASE("local port busy at bind: the message names the port, TIME_WAIT and the fixes", "[net_error][seed]") {
  const auto e = cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE))
                     .with_local(cp::Endpoint::any_v4(40003))
                     .with_remote(server)
                     .with_attempts(3);
  CHECK(e.condition() == cp::Errc::local_port_busy);
  CHECK(e.code() == cp::Errc::local_port_busy);
  const std::string m = e.message();
  CHECK_THAT(m, Contains("bind 0.0.0.0:40003 -> 127.0.0.1:7000"));
  CHECK_THAT(m, Contains("local port busy"));
  CHECK_THAT(m, Contains("EADDRINUSE, errno " + std::to_string(EADDRINUSE)));
  CHECK_THAT(m, Contains("after 3 attempts"));
  CHECK_THAT(m, Contains("port 40003"));
  CHECK_THAT(m, Contains("TIME_WAIT"));
  CHECK_THAT(m, Contains("FixedPortRotation"));
  CHECK(m.find('\n') == std::string::npos);
}

TEST_CASE("Winsock 10048 reads as on Windows", "[net_error][windows]") {
  const auto e = cp::NetError(cp::Step::connect, cp::make_winsock_error(10048))
                     .with_local(cp::Endpoint::any_v4(40003))
                     .with_remote(server);
  CHECK(e.condition() == cp::Errc::local_port_busy);
  CHECK_THAT(e.message(), Contains("WSAEADDRINUSE, Winsock 10048"));
}

TEST_CASE("ephemeral exhaustion is recognised whatever the platform reports", "[net_error]") {
  // Linux: EADDRNOTAVAIL at connect, the kernel choosing the port.
  CHECK(cp::NetError(cp::Step::connect, cp::make_system_error(EADDRNOTAVAIL)).with_remote(server).condition() ==
        cp::Errc::local_ports_exhausted);
  // Linux: EADDRINUSE at bind to port 0.
  CHECK(
      cp::NetError(cp::Step::bind, cp::make_system_error(EADDRINUSE)).with_local(cp::Endpoint::any_v4(0)).condition() ==
      cp::Errc::local_ports_exhausted);
  // Windows: 10048 at connect without a port of ours, or 10055.
  CHECK(cp::NetError(cp::Step::connect, cp::make_winsock_error(10048)).condition() == cp::Errc::local_ports_exhausted);
  CHECK(cp::NetError(cp::Step::connect, cp::make_winsock_error(10055)).condition() == cp::Errc::local_ports_exhausted);
  // A rotation with every port cooling.
  CHECK(cp::NetError(cp::Step::bind, cp::LibraryError::all_ports_cooling).condition() ==
        cp::Errc::local_ports_exhausted);
}

TEST_CASE("EADDRNOTAVAIL at connect from a port of ours is that port being busy", "[net_error]") {
  const auto e =
      cp::NetError(cp::Step::connect, cp::make_system_error(EADDRNOTAVAIL)).with_local(cp::Endpoint::any_v4(40001));
  CHECK(e.condition() == cp::Errc::local_port_busy);
  // At bind, EADDRNOTAVAIL means the address is not ours.
  CHECK(cp::NetError(cp::Step::bind, cp::make_system_error(EADDRNOTAVAIL))
            .with_local(cp::Endpoint::any_v4(40001))
            .condition() == cp::Errc::address_not_available);
}

TEST_CASE("refused: the message names the remote and suggests a backoff", "[net_error]") {
  const auto e = cp::NetError(cp::Step::wait, cp::make_system_error(ECONNREFUSED)).with_remote(server).with_attempts(1);
  CHECK(e.condition() == cp::Errc::connection_refused);
  CHECK_THAT(e.message(), Contains("wait -> 127.0.0.1:7000: connection refused (ECONNREFUSED"));
  CHECK_THAT(e.message(), Contains("after 1 attempt;"));
  CHECK_THAT(e.message(), Contains("nothing listens on 127.0.0.1:7000"));
}

TEST_CASE("unknown codes still give a readable message", "[net_error]") {
  const auto e = cp::NetError(cp::Step::socket, cp::make_system_error(ENOTSOCK));
  CHECK(e.condition() == cp::Errc::other);
  CHECK_THAT(e.message(), Contains("socket: error (errno " + std::to_string(ENOTSOCK) + ": "));
}

TEST_CASE("NetError keeps what it was given", "[net_error]") {
  auto e = cp::NetError(cp::Step::parse, cp::LibraryError::invalid_endpoint, "bad text");
  CHECK(e.step() == cp::Step::parse);
  CHECK(e.detail() == "bad text");
  CHECK_FALSE(e.local_endpoint().has_value());
  CHECK_FALSE(e.remote_endpoint().has_value());
  CHECK(e.attempts() == 0);
  e.with_attempts(2).with_remote(server);
  CHECK(e.attempts() == 2);
  CHECK(e.remote_endpoint() == server);
  CHECK_THAT(e.message(), Contains("LibraryError::invalid_endpoint"));
  CHECK_THAT(e.message(), Contains(": bad text"));
}

// The one comparison users need, `error == Errc::x`, against the table path `code() == Errc::x`:
// for every row of the table, both platforms' codes, every step, and a local port of the
// kernel's (none, or port 0) or of our own, the two agree except in exactly the three cases
// NetError::condition documents. An independent statement of those cases, not a copy of the code.
TEST_CASE("error == Errc agrees with code() == Errc everywhere but the three documented refinements",
          "[net_error][error]") {
  const cp::Step steps[] = {cp::Step::socket, cp::Step::set_option, cp::Step::bind,         cp::Step::connect,
                            cp::Step::wait,   cp::Step::parse,      cp::Step::read_address, cp::Step::census};
  const std::optional<cp::Endpoint> locals[] = {std::nullopt, cp::Endpoint::any_v4(0), cp::Endpoint::any_v4(40000)};
  std::size_t combinations = 0, refined = 0;
  for (const cp::ErrorMapping& row : cp::error_mappings()) {
    for (const std::error_code code : {cp::make_system_error(row.posix), cp::make_winsock_error(row.winsock)}) {
      if (code.value() == 0) continue;
      for (const cp::Step step : steps) {
        for (const auto& local : locals) {
          cp::NetError e(step, code);
          if (local) e.with_local(*local);
          const bool kernel_port = !local || local->port() == 0;
          cp::Errc expected = row.condition;
          if (step == cp::Step::connect && kernel_port &&
              (row.condition == cp::Errc::address_not_available || row.condition == cp::Errc::local_port_busy))
            expected = cp::Errc::local_ports_exhausted;
          else if (step == cp::Step::connect && !kernel_port && row.condition == cp::Errc::address_not_available)
            expected = cp::Errc::local_port_busy;
          else if (step == cp::Step::bind && local && local->port() == 0 && row.condition == cp::Errc::local_port_busy)
            expected = cp::Errc::local_ports_exhausted;
          INFO(cp::to_string(step) << " " << cp::code_name(code) << " local "
                                   << (local ? local->to_string() : std::string("none")));
          ++combinations;
          CHECK(e.condition() == expected);
          CHECK(e == expected);
          CHECK(expected == e);  // the reversed form reads the same
          CHECK_FALSE(e != expected);
          // The table path knows only the code.
          CHECK(e.code() == row.condition);
          if (expected != row.condition) {
            ++refined;
            CHECK_FALSE(e == row.condition);
            CHECK(e.code() != expected);  // where the table path cannot follow: documented
          }
        }
      }
    }
  }
  CHECK(combinations > 500);
  CHECK(refined > 0);
}

TEST_CASE("the seed's 10048 at connect: the error says exhausted or busy by who chose the port",
          "[net_error][windows]") {
  const auto kernel = cp::NetError(cp::Step::connect, cp::make_winsock_error(10048)).with_remote(server);
  CHECK(kernel == cp::Errc::local_ports_exhausted);
  CHECK(kernel.code() == cp::Errc::local_port_busy);  // the table alone: documented difference
  const auto ours = cp::NetError(cp::Step::connect, cp::make_winsock_error(10048))
                        .with_local(cp::Endpoint::any_v4(40003))
                        .with_remote(server);
  CHECK(ours == cp::Errc::local_port_busy);
  CHECK(ours != cp::Errc::local_ports_exhausted);
}
