// diagnose() on made-up hosts: each finding, its ports, its figures and its advice, exactly.
#include <catch2/catch.hpp>

#include "doctor.hpp"

namespace cp = connpolicy;
namespace cmd = connpolicy::command;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
cp::Endpoint ep(const char* text) { return cp::Endpoint::parse(text).value(); }

cp::PortUse use(const char* local, const char* remote, cp::TcpState state,
                std::optional<std::chrono::milliseconds> left = std::nullopt) {
  return {ep(local), remote ? ep(remote) : cp::Endpoint::any_v4(), state, left};
}

cmd::HostFacts linux_host() {
  cmd::HostFacts f;
  f.system = "linux";
  f.ephemeral = cp::PortRange::make(32768, 60999).value();
  f.reserved_text = "40005";
  f.reserved = cmd::parse_port_list(f.reserved_text);
  f.tcp_timestamps = true;
  f.tcp_tw_reuse = 2;
  return f;
}

// A server on 7000 with one accepted connection, two TIME_WAITs and a live socket on the range,
// and traffic to another destination.
cp::Census busy_host() {
  cp::Census c;
  c.uses = {use("127.0.0.1:7000", nullptr, cp::TcpState::listen),
            use("127.0.0.1:7000", "127.0.0.1:40009", cp::TcpState::established),  // server side: not a destination
            use("127.0.0.1:40000", "127.0.0.1:7000", cp::TcpState::time_wait, 42000ms),
            use("127.0.0.1:40003", "127.0.0.1:7000", cp::TcpState::time_wait, 1500ms),
            use("127.0.0.1:40004", "10.0.0.1:80", cp::TcpState::established),
            use("127.0.0.1:33000", "10.0.0.1:80", cp::TcpState::time_wait, 59000ms),
            use("127.0.0.1:33001", "10.0.0.1:80", cp::TcpState::established)};
  return c;
}

// A host whose ephemeral range is 100 ports, 50000-50099, none reserved.
cmd::HostFacts hundred_port_host() {
  cmd::HostFacts f = linux_host();
  f.ephemeral = cp::PortRange::make(50000, 50099).value();
  f.reserved.clear();
  f.reserved_text.clear();
  return f;
}
// `time_waits` TIME_WAITs towards 127.0.0.1:7000 from 50000 on.
cp::Census host_with(int time_waits) {
  cp::Census c;
  for (int i = 0; i < time_waits; ++i)
    c.uses.push_back({cp::Endpoint::loopback_v4(static_cast<std::uint16_t>(50000 + i)), ep("127.0.0.1:7000"),
                      cp::TcpState::time_wait, 30000ms});
  return c;
}

std::vector<std::string> ids(const cmd::Diagnosis& d) {
  std::vector<std::string> out;
  for (const auto& f : d.findings) out.push_back(f.id);
  return out;
}
const cmd::Finding& finding(const cmd::Diagnosis& d, const std::string& id) {
  for (const auto& f : d.findings)
    if (f.id == id) return f;
  FAIL("no finding " << id);
  throw;
}
}  // namespace

TEST_CASE("doctor: TIME_WAITs and a live socket on the range, counted per destination", "[doctor]") {
  const auto d =
      cmd::diagnose(linux_host(), busy_host(), cp::PortRange::make(40000, 40009).value(), ep("127.0.0.1:7000"));
  CHECK(d.sockets == 7);
  CHECK(d.time_wait == 3);
  CHECK(d.ephemeral_usable == 28231);  // 32768-60999 less the reserved 40005
  REQUIRE(d.destinations.size() == 2);
  CHECK(d.destinations[0].remote == ep("10.0.0.1:80"));  // three ephemeral ports held: first
  CHECK(d.destinations[0].ephemeral_held == 3);
  // Less its 3 ports, and 40000 and 40003 (of --range: bound, which connect() never reuses).
  CHECK(d.destinations[0].ephemeral_left == 28226);
  CHECK(d.destinations[0].ephemeral_left_at_least == 28226);
  CHECK(d.destinations[1].remote == ep("127.0.0.1:7000"));
  CHECK(d.destinations[1].time_wait == 2);
  REQUIRE(d.to);
  CHECK(d.to->ephemeral_held == 2);
  CHECK(d.held.size() == 3);  // 40000, 40003, 40004 (the server's socket towards 40009 holds 7000)
  CHECK(ids(d) == std::vector<std::string>{"time_wait_in_range", "port_in_use_in_range", "range_in_ephemeral_range"});
  const auto& tw = finding(d, "time_wait_in_range");
  CHECK(tw.ports == std::vector<std::uint16_t>{40000, 40003});
  CHECK_THAT(tw.text, Contains("40000 for 42 s, 40003 for 2 s more") && Contains("EADDRINUSE (10048 on Windows)") &&
                          Contains("FixedPortRotation"));
  const auto& busy = finding(d, "port_in_use_in_range");
  CHECK(busy.ports == std::vector<std::uint16_t>{40004});
  CHECK_THAT(busy.text, Contains("40004 (ESTABLISHED to 10.0.0.1:80)") &&
                            Contains("reuse_address helps only when that socket set it too and does not listen"));
  const auto& exposed = finding(d, "range_in_ephemeral_range");
  CHECK(exposed.ports.size() == 9);  // 40005 is reserved already
  CHECK_THAT(exposed.text, Contains("sysctl -w net.ipv4.ip_local_reserved_ports=40005,40000-40009"));
}

TEST_CASE("doctor: a range every port of which is held is exhausted", "[doctor]") {
  cp::Census c;
  c.uses = {use("127.0.0.1:20000", "127.0.0.1:7000", cp::TcpState::time_wait, 5000ms),
            use("127.0.0.1:20001", "127.0.0.1:7000", cp::TcpState::time_wait, 6000ms)};
  const auto d = cmd::diagnose(linux_host(), c, cp::PortRange::make(20000, 20001).value(), std::nullopt);
  CHECK(ids(d) == std::vector<std::string>{"time_wait_in_range", "range_exhausted"});  // below the ephemeral range
  CHECK_THAT(finding(d, "range_exhausted").text, Contains("every port of 20000-20001 is held"));
  const auto healthy = cmd::diagnose(linux_host(), c, cp::PortRange::make(20000, 20002).value(), std::nullopt);
  CHECK(ids(healthy) == std::vector<std::string>{"time_wait_in_range"});
}

TEST_CASE("doctor: fewer than a tenth of the ephemeral ports left towards a destination is a finding", "[doctor]") {
  const cmd::HostFacts f = hundred_port_host();
  const auto low = cmd::diagnose(f, host_with(91), std::nullopt, ep("127.0.0.1:7000"));
  CHECK(low.to->ephemeral_left == 9);
  CHECK(low.to->ephemeral_left_at_least == 9);
  // Towards a new destination, 9 too if those 91 ports were claimed with bind(): a finding.
  CHECK(ids(low) == std::vector<std::string>{"destination_ports_low", "ephemeral_ports_maybe_bound"});
  CHECK_THAT(low.findings[0].text, Contains("127.0.0.1:7000: 9 of 100 ephemeral ports left (91 TIME_WAITs"));
  const auto enough = cmd::diagnose(f, host_with(90), std::nullopt, ep("127.0.0.1:7000"));
  CHECK(enough.to->ephemeral_left == 10);  // exactly a tenth: not yet
  CHECK(enough.findings.empty());
  const auto nobody = cmd::diagnose(f, cp::Census{}, std::nullopt, ep("127.0.0.2:9"));
  CHECK(nobody.to->ephemeral_left == 100);
  CHECK(nobody.to->ephemeral_held == 0);
}

// Linux's connect() never picks a port claimed with bind(), towards any destination: 50
// TIME_WAITs from ports bound explicitly leave 50 of 100 ports towards another destination, not
// 100. The kernel does not say which ports were bound, so doctor gives a span, exact when --range
// names the ports the client binds.
TEST_CASE("doctor: ports claimed with bind() count against every destination's headroom", "[doctor]") {
  const cmd::HostFacts f = hundred_port_host();
  const auto unnamed = cmd::diagnose(f, host_with(50), std::nullopt, ep("127.0.0.1:7001"));
  CHECK(unnamed.to->ephemeral_left == 100);  // if the kernel chose them: shared with 7001
  CHECK(unnamed.to->ephemeral_left_at_least == 50);
  CHECK(unnamed.destinations[0].ephemeral_left == 50);
  CHECK(unnamed.findings.empty());  // half left at worst: no finding
  CHECK_THAT(cmd::render_text(unnamed), Contains("to 127.0.0.1:7001: 0 TIME_WAIT, 0 ephemeral ports held, 100 left "
                                                 "(as few as 50)") &&
                                            Contains("(as few as: if every port held towards other destinations was "
                                                     "claimed with bind()"));
  const auto json = cmd::to_json(unnamed);
  CHECK(json["to"]["ephemeral_ports_left"] == 100);
  CHECK(json["to"]["ephemeral_ports_left_at_least"] == 50);

  const auto named = cmd::diagnose(f, host_with(50), cp::PortRange::make(50000, 50049).value(), ep("127.0.0.1:7001"));
  CHECK(named.to->ephemeral_left == 50);  // the user says they are bound: exact
  CHECK(named.to->ephemeral_left_at_least == 50);
  CHECK_THAT(cmd::render_text(named), Contains("to 127.0.0.1:7001: 0 TIME_WAIT, 0 ephemeral ports held, 50 left\n"));

  const auto crowded = cmd::diagnose(f, host_with(95), std::nullopt, ep("127.0.0.1:7001"));
  CHECK(crowded.to->ephemeral_left == 100);
  CHECK(crowded.to->ephemeral_left_at_least == 5);
  CHECK_THAT(finding(crowded, "ephemeral_ports_maybe_bound").text,
             Contains("95 ports of the ephemeral range are held by client sockets") &&
                 Contains("as few as 5 of 100 may be left towards a new destination") && Contains("--range"));
  const auto crowded_named =
      cmd::diagnose(f, host_with(95), cp::PortRange::make(50000, 50094).value(), ep("127.0.0.1:7001"));
  CHECK(crowded_named.to->ephemeral_left == 5);
  CHECK(std::ranges::count(ids(crowded_named), "ephemeral_ports_maybe_bound") == 0);
}

TEST_CASE("doctor: timestamps off, and Windows, which says no time left and has no sysctl", "[doctor]") {
  cmd::HostFacts f = linux_host();
  f.tcp_timestamps = false;
  CHECK(ids(cmd::diagnose(f, cp::Census{}, std::nullopt, std::nullopt)) == std::vector<std::string>{"timestamps_off"});
  cmd::HostFacts w;
  w.system = "windows";
  w.ephemeral = cp::PortRange::make(49152, 65535).value();
  w.ephemeral_is_default = true;
  cp::Census c;
  c.source = cp::CensusSource::tcp_table;
  c.uses = {use("127.0.0.1:50000", "127.0.0.1:7000", cp::TcpState::time_wait)};
  const auto d = cmd::diagnose(w, c, cp::PortRange::make(50000, 50001).value(), std::nullopt);
  CHECK(ids(d) == std::vector<std::string>{"time_wait_in_range", "range_in_ephemeral_range"});
  CHECK_THAT(d.findings[0].text, Contains("50000 for an unknown time (Windows does not say"));
  CHECK_THAT(d.findings[1].text, Contains("netsh int ipv4 set dynamicport") && !Contains("sysctl"));
  CHECK_THAT(cmd::render_text(d), Contains("49152-65535 (the default; not read)"));
}

TEST_CASE("doctor: the JSON carries the same values (the contract of docs/command.md)", "[doctor]") {
  const auto d =
      cmd::diagnose(linux_host(), busy_host(), cp::PortRange::make(40000, 40009).value(), ep("127.0.0.1:7000"));
  const auto j = nlohmann::json::parse(cmd::to_json(d).dump());
  CHECK(j["version"] == 2);
  CHECK(j["system"] == "linux");
  CHECK(j["time_wait"] == 3);
  CHECK(j["ephemeral_range"]["first"] == 32768);
  CHECK(j["ephemeral_range"]["default"] == false);
  CHECK(j["reserved_ports"] == "40005");
  CHECK(j["tcp_timestamps"] == true);
  CHECK(j["tcp_tw_reuse"] == 2);
  CHECK(j["destinations"].size() == 2);
  CHECK(j["to"]["remote"] == "127.0.0.1:7000");
  CHECK(j["to"]["ephemeral_ports_left"] == 28228);           // less its 2 ports and 40004 (of --range, held elsewhere)
  CHECK(j["to"]["ephemeral_ports_left_at_least"] == 28226);  // less 33000 and 33001 too, if they were bound
  CHECK(j["range"]["free"] == 7);
  CHECK(j["range"]["held"][0]["port"] == 40000);
  CHECK(j["range"]["held"][0]["sockets"][0]["state"] == "TIME_WAIT");
  CHECK(j["range"]["held"][0]["sockets"][0]["time_wait_left_ms"] == 42000);
  CHECK(j["range"]["held"][2]["sockets"][0]["time_wait_left_ms"].is_null());  // ESTABLISHED
  CHECK(j["range"]["held"][2]["sockets"][0]["owner"].is_null());              // owners not looked up
  CHECK(j["findings"][0]["id"] == "time_wait_in_range");
  CHECK(j["findings"][0]["ports"] == nlohmann::json::array({40000, 40003}));
  const std::string text = cmd::render_text(d);
  CHECK_THAT(text, Contains("  40000  TIME_WAIT  127.0.0.1:40000 -> 127.0.0.1:7000  42 s left\n"));
  CHECK_THAT(text, Contains("to 127.0.0.1:7000: 2 TIME_WAIT, 2 ephemeral ports held, 28228 left (as few as 28226)\n"));
  CHECK_THAT(text, Contains("findings (3):"));
}

TEST_CASE("doctor: the reserved-ports sysctl's list, as the kernel writes it", "[doctor]") {
  const auto ranges = cmd::parse_port_list("1000-1010,2000,bad,3000-2999");
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0] == cp::PortRange::make(1000, 1010).value());
  CHECK(ranges[1] == cp::PortRange::make(2000, 2000).value());
  CHECK(cmd::parse_port_list("").empty());
}

namespace {
// busy_host() with inodes, and the owners a pass over /proc would have found: 40004's socket is
// loginclient's (pid 4242, uid 1000), 33001's another user's process that this user may not read.
struct OwnedHost {
  cp::Census census = busy_host();
  cp::SocketOwners owners;
  OwnedHost() {
    for (auto& use : census.uses) {
      if (use.state == cp::TcpState::time_wait) continue;
      use.inode = 1000 + use.local.port();
      use.uid = use.local.port() == 33001 ? 0u : 1000u;
    }
    owners.looked = true;
    owners.processes = 300;
    owners.unreadable = 12;
    cp::SocketOwner login;
    login.pid = 4242;
    login.command = "loginclient";
    login.unknown = cp::SocketOwner::Unknown::none;
    owners.by_inode[1000 + 40004] = login;
  }
};
}  // namespace

TEST_CASE("doctor: findings and the range name the process that holds each socket", "[doctor][owners]") {
  const OwnedHost host;
  const auto d = cmd::diagnose(linux_host(), host.census, cp::PortRange::make(40000, 40009).value(),
                               ep("127.0.0.1:7000"), host.owners);
  CHECK_THAT(finding(d, "port_in_use_in_range").text,
             Contains("40004 (ESTABLISHED to 10.0.0.1:80, held by pid 4242 (loginclient), uid 1000)"));
  const std::string text = cmd::render_text(d);
  CHECK_THAT(text, Contains("  40004  ESTABLISHED  127.0.0.1:40004 -> 10.0.0.1:80  held by pid 4242 (loginclient), "
                            "uid 1000\n"));
  CHECK_THAT(text, Contains("  40000  TIME_WAIT  127.0.0.1:40000 -> 127.0.0.1:7000  42 s left  no process (TIME_WAIT: "
                            "the kernel holds it)\n"));
  // Towards 10.0.0.1:80: 40004 is loginclient's; 33001 is unknown (another user's): most by 4242.
  REQUIRE(d.destinations[0].held_most_by);
  CHECK(d.destinations[0].held_most_by->pid == 4242u);
  CHECK(d.destinations[0].held_most == 1);
  CHECK_THAT(text, Contains("10.0.0.1:80  1 TIME_WAIT, 3 ephemeral ports held, 28226 left; most held by pid 4242 "
                            "(loginclient), uid 1000 (1 socket(s))"));
  const auto j = nlohmann::json::parse(cmd::to_json(d).dump());
  const auto& owner = j["range"]["held"][2]["sockets"][0]["owner"];
  CHECK(owner["pid"] == 4242);
  CHECK(owner["command"] == "loginclient");
  CHECK(owner["uid"] == 1000);
  CHECK(owner["unknown"].is_null());
  const auto& tw = j["range"]["held"][0]["sockets"][0]["owner"];
  CHECK(tw["pid"].is_null());
  CHECK(tw["unknown"] == "time_wait");
  CHECK(j["destinations"][0]["held_most_by"]["owner"]["pid"] == 4242);
  CHECK(j["destinations"][0]["held_most_by"]["sockets"] == 1);
  CHECK(j["destinations"][1]["held_most_by"].is_null());  // only TIME_WAITs towards 7000
  // The socket of another user's process: unknown, and why.
  const cp::PortUse* other = nullptr;
  for (const auto& use : host.census.uses)
    if (use.local.port() == 33001) other = &use;
  REQUIRE(other);
  CHECK(cp::to_string(host.owners.of(*other)) == "unknown (needs root), uid 0");
  CHECK(cmd::held_by(*other, host.owners) == ", held by a process unknown to this user (needs root)");
}
