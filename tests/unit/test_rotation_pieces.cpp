// FixedPortRotation's pieces without threads, a lock or a clock: the free list, the reading of a
// census answer (survey and look_up) against the slots, and the exhaustion message.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>
import connpolicy;

namespace cp = connpolicy;
namespace rot = connpolicy::detail::rotation;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const cp::PortRange range{40000, 40003};
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
const cp::Timer::time_point t0 = cp::Timer::time_point{} + 1h;

std::vector<rot::Slot> make_slots() {
  std::vector<rot::Slot> slots(range.size());
  for (std::size_t i = 0; i < slots.size(); ++i) slots[i].port = static_cast<std::uint16_t>(range.first() + i);
  return slots;
}
std::vector<std::size_t> order_of(const rot::FreeList& free) { return {free.begin(), free.end()}; }

cp::PortUse time_wait(std::uint16_t port, std::chrono::milliseconds left) {
  return {cp::Endpoint::loopback_v4(port), server, cp::TcpState::time_wait, left};
}
}  // namespace

TEST_CASE("rotation pieces: the free list keeps release order through takes from the middle", "[rotation]") {
  auto slots = make_slots();
  rot::FreeList free(slots);
  for (std::size_t i : {2u, 0u, 3u, 1u}) free.push_back(i);
  CHECK(order_of(free) == std::vector<std::size_t>{2, 0, 3, 1});
  free.erase(3);  // middle
  free.erase(2);  // head
  free.erase(1);  // tail
  CHECK(order_of(free) == std::vector<std::size_t>{0});
  free.push_back(3);
  free.push_back(2);
  CHECK(order_of(free) == std::vector<std::size_t>{0, 3, 2});
  CHECK(free.size() == 3);
  free.erase(0);
  free.erase(3);
  free.erase(2);
  CHECK(free.empty());
  CHECK(free.begin() == free.end());
}

TEST_CASE("rotation pieces: a survey sets kernel TIME_WAITs, frees wrong guesses, keeps busy failures", "[rotation]") {
  auto slots = make_slots();
  slots[0].guessed = true;  // guessed 60 s, the kernel says 5 s
  slots[0].ready_at = t0 + 60s;
  slots[1].guessed = true;  // guessed, the kernel has nothing: free now
  slots[1].ready_at = t0 + 60s;
  slots[1].rest = rot::Rest::assumed_time_wait;
  slots[2].guessed = true;  // a failed bind the census cannot see: keeps its rest
  slots[2].ready_at = t0 + 60s;
  slots[2].rest = rot::Rest::busy_failure;
  slots[3].released = 9;  // came back while the census ran: untouched
  slots[3].ready_at = t0 + 30s;
  cp::Census census;
  census.uses = {time_wait(40000, 5s), time_wait(40003, 50s)};
  census.time_wait_slack = 2s;
  rot::apply_survey(slots, {census, t0, /*as_of=*/5, /*time_wait_reusable=*/false}, range, cp::Endpoint::any_v4());
  CHECK(slots[0].ready_at == t0 + 7s);
  CHECK(slots[0].rest == rot::Rest::kernel_time_wait);
  CHECK_FALSE(slots[0].guessed);
  CHECK(slots[1].ready_at == t0);
  CHECK(slots[1].rest == rot::Rest::none);
  CHECK(slots[2].ready_at == t0 + 60s);
  CHECK(slots[2].rest == rot::Rest::busy_failure);
  CHECK_FALSE(slots[2].guessed);
  CHECK(slots[3].ready_at == t0 + 30s);
}

TEST_CASE("rotation pieces: another program's socket is held and looked at again, a reusable TIME_WAIT is not",
          "[rotation]") {
  const cp::PortUse listener{cp::Endpoint::any_v4(40001), cp::Endpoint{}, cp::TcpState::listen, std::nullopt};
  const auto held = rot::hold_of(listener, t0, 0ms, false);
  REQUIRE(held);
  CHECK(held->until == t0 + rot::recheck_held);
  CHECK(held->why == rot::Rest::other_socket);
  CHECK(held->guessed);
  CHECK_FALSE(rot::hold_of(time_wait(40001, 5s), t0, 0ms, /*time_wait_reusable=*/true));
  const cp::PortUse windows_time_wait{cp::Endpoint::loopback_v4(40001), server, cp::TcpState::time_wait, std::nullopt};
  CHECK(rot::hold_of(windows_time_wait, t0, 0ms, false)->why == rot::Rest::time_wait_unknown_end);
  // A socket on another source address does not hold our port; one on any address does.
  CHECK_FALSE(rot::overlaps(cp::Endpoint::loopback_v4(40001), cp::Endpoint::ipv4({10, 0, 0, 1}, 0)));
  CHECK(rot::overlaps(cp::Endpoint::any_v4(40001), cp::Endpoint::ipv4({10, 0, 0, 1}, 0)));
}

TEST_CASE("rotation pieces: a look_up answers only the asked slots, by their exact connection", "[rotation]") {
  auto slots = make_slots();
  rot::FreeList free(slots);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    slots[i].guessed = true;
    slots[i].look_up_ok = true;
    slots[i].ready_at = t0 + 60s;
    slots[i].local = cp::Endpoint::loopback_v4(slots[i].port);
    slots[i].remote = server;
    free.push_back(i);
  }
  auto asked = rot::guessed_to_look_up(slots, free);
  CHECK(asked == std::vector<std::size_t>{0, 1, 2, 3});
  cp::Census census;
  census.uses = {time_wait(40001, 3s),
                 {cp::Endpoint::loopback_v4(40002), cp::Endpoint::loopback_v4(9), cp::TcpState::time_wait, 40s}};
  const std::vector<std::size_t> two{1, 2};
  rot::apply_look_up(slots, {census, t0, 0, false}, two);
  CHECK(slots[1].ready_at == t0 + 3s);   // its connection is in TIME_WAIT
  CHECK(slots[2].ready_at == t0);        // another connection on its port is not ours: gone
  CHECK(slots[0].ready_at == t0 + 60s);  // not asked
  // One slot that cannot be looked up (no known connection) makes a survey necessary.
  slots[3].look_up_ok = false;
  CHECK(rot::guessed_to_look_up(slots, free).empty());
}

TEST_CASE("rotation pieces: the exhaustion error names the first port to free, when and why", "[rotation]") {
  auto slots = make_slots();
  rot::FreeList free(slots);
  for (std::size_t i = 0; i < 3; ++i) {
    slots[i].ready_at = t0 + std::chrono::seconds(10 * (3 - i));
    slots[i].rest = rot::Rest::kernel_time_wait;
    free.push_back(i);
  }
  free.push_back(3);  // every port cooling, none lent: the wait for the first is promised
  slots[3].ready_at = t0 + 40s;
  const cp::NetError cooling = rot::all_ports_unavailable(slots, free, range, t0, "");
  REQUIRE(cooling.retry_after());
  CHECK(*cooling.retry_after() == 10s);
  free.erase(3);
  slots[3].in_use = true;  // one lent: it may come back any moment, so no wait is promised
  const cp::NetError e = rot::all_ports_unavailable(slots, free, range, t0, "");
  CHECK(e == cp::Errc::local_ports_exhausted);
  CHECK_FALSE(e.retry_after());
  CHECK_THAT(e.detail(), Contains("port 40002 frees in 10.0 s (the kernel's TIME_WAIT timer)"));
  CHECK_THAT(e.detail(), Contains("or lent to open sockets (1)") && Contains("a lent port may come back sooner"));
  rot::FreeList none(slots);
  const cp::NetError held = rot::all_ports_unavailable(slots, none, range, t0, "");
  CHECK_THAT(held.detail(), Contains("held by open sockets"));
  CHECK_FALSE(held.retry_after());
}
