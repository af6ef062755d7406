// Error policies: the action for each (step, condition) and what the Connector can do.
#include <catch2/catch.hpp>
#include <cerrno>
#include <string>
import connpolicy;

namespace cp = connpolicy;
using cp::Action;

namespace {
Action classify(cp::Step step, std::error_code code, bool can_rebind, bool has_next, bool own_port = true) {
  cp::NetError e(step, code);
  if (own_port) e.with_local(cp::Endpoint::any_v4(40000));
  return cp::DefaultErrorPolicy{}.classify(cp::Failure{e, can_rebind, has_next});
}
Action fail_fast(cp::Step step, std::error_code code, bool can_rebind, bool has_next) {
  const auto e = cp::NetError(step, code).with_local(cp::Endpoint::any_v4(40000));
  return cp::FailFast{}.classify(cp::Failure{e, can_rebind, has_next});
}
std::error_code os(int e) { return cp::make_system_error(e); }
}  // namespace

TEST_CASE("DefaultErrorPolicy: a busy port means another port, or a wait", "[errors]") {
  STATIC_REQUIRE(cp::ErrorPolicy<cp::DefaultErrorPolicy>);
  CHECK(classify(cp::Step::bind, os(EADDRINUSE), true, false) == Action::rebind);
  CHECK(classify(cp::Step::bind, os(EADDRINUSE), false, false) == Action::retry);
  CHECK(classify(cp::Step::connect, os(EADDRNOTAVAIL), true, false) == Action::rebind);  // 4-tuple taken
  CHECK(classify(cp::Step::connect, cp::make_winsock_error(10048), true, false) == Action::rebind);
  CHECK(classify(cp::Step::bind, os(EACCES), true, false) == Action::rebind);
  CHECK(classify(cp::Step::bind, os(EACCES), false, false) == Action::give_up);
  CHECK(classify(cp::Step::bind, os(EADDRNOTAVAIL), false, false) == Action::give_up);  // not our address
}

TEST_CASE("Error policies: a source address not on this host means the pool's next address, or giving up",
          "[errors][pool]") {
  const cp::NetError e =
      cp::NetError(cp::Step::bind, os(EADDRNOTAVAIL)).with_local(cp::Endpoint::ipv4({192, 0, 2, 1}, 0));
  // Another port cannot help (can_rebind alone), another address can.
  CHECK(cp::DefaultErrorPolicy{}.classify(cp::Failure{e, true, false, false}) == Action::give_up);
  CHECK(cp::DefaultErrorPolicy{}.classify(cp::Failure{e, true, false, true}) == Action::rebind);
  CHECK(cp::FailFast{}.classify(cp::Failure{e, true, false, false}) == Action::give_up);
  CHECK(cp::FailFast{}.classify(cp::Failure{e, false, false, true}) == Action::rebind);
  STATIC_REQUIRE(cp::can_change_address<cp::SourceAddressPool>());
  STATIC_REQUIRE_FALSE(cp::can_change_address<cp::FixedPortRotation>());
}

TEST_CASE("DefaultErrorPolicy: exhausted ports mean waiting", "[errors]") {
  CHECK(classify(cp::Step::connect, os(EADDRNOTAVAIL), true, true, /*own_port=*/false) == Action::retry);
  CHECK(classify(cp::Step::bind, make_error_code(cp::LibraryError::all_ports_cooling), true, false) == Action::retry);
  CHECK(classify(cp::Step::connect, cp::make_winsock_error(10055), false, false) == Action::retry);
  CHECK(classify(cp::Step::socket, os(EMFILE), false, false) == Action::retry);
}

TEST_CASE("DefaultErrorPolicy: the peer's failures move on, then retry", "[errors]") {
  for (int e : {ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, ECONNRESET, ENETDOWN}) {
    INFO(e);
    CHECK(classify(cp::Step::connect, os(e), true, true) == Action::next_endpoint);
    CHECK(classify(cp::Step::connect, os(e), true, false) == Action::retry);
  }
  CHECK(classify(cp::Step::wait, make_error_code(cp::LibraryError::deadline_exceeded), false, false) == Action::retry);
}

TEST_CASE("DefaultErrorPolicy: mistakes give up at once", "[errors]") {
  CHECK(classify(cp::Step::connect, os(EINVAL), true, true) == Action::give_up);
  CHECK(classify(cp::Step::connect, os(EPERM), true, true) == Action::give_up);
  CHECK(classify(cp::Step::connect, os(EACCES), true, true) == Action::give_up);
  CHECK(classify(cp::Step::connect, make_error_code(cp::LibraryError::cancelled), true, true) == Action::give_up);
  CHECK(classify(cp::Step::socket, os(ENOTSOCK), true, true) == Action::give_up);
  CHECK(classify(cp::Step::socket, os(EAFNOSUPPORT), false, false) == Action::give_up);
  CHECK(classify(cp::Step::socket, os(EAFNOSUPPORT), false, true) == Action::next_endpoint);
}

TEST_CASE("FailFast never waits", "[errors]") {
  STATIC_REQUIRE(cp::ErrorPolicy<cp::FailFast>);
  CHECK(fail_fast(cp::Step::bind, os(EADDRINUSE), true, false) == Action::rebind);
  CHECK(fail_fast(cp::Step::bind, os(EADDRINUSE), false, false) == Action::give_up);
  CHECK(fail_fast(cp::Step::connect, os(ECONNREFUSED), false, true) == Action::next_endpoint);
  CHECK(fail_fast(cp::Step::connect, os(ECONNREFUSED), false, false) == Action::give_up);
  CHECK(fail_fast(cp::Step::connect, os(EINVAL), false, true) == Action::give_up);
  CHECK(cp::to_string(Action::next_endpoint) == "next_endpoint");
}
