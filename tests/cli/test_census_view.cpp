// `connpolicy census`'s filters and views on made-up sockets; under Wine, the owning pid that
// Windows' own table gives for a socket this process holds.
#include <catch2/catch.hpp>
#include <algorithm>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#endif

#include "census_view.hpp"
#include "doctor.hpp"

namespace cp = connpolicy;
namespace cmd = connpolicy::command;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
cp::Endpoint ep(const char* text) { return cp::Endpoint::parse(text).value(); }

// Four sockets: two TIME_WAITs towards 7000, one live towards 7000 held by pid 4242, one towards 80.
struct Host {
  cp::Census census;
  cp::SocketOwners owners;
  Host() {
    census.uses = {{ep("127.0.0.1:40000"), ep("127.0.0.1:7000"), cp::TcpState::time_wait, 30000ms},
                   {ep("127.0.0.1:40001"), ep("127.0.0.1:7000"), cp::TcpState::time_wait, 20000ms},
                   {ep("127.0.0.1:40002"), ep("127.0.0.1:7000"), cp::TcpState::established, {}, 77, 1000},
                   {ep("127.0.0.1:50000"), ep("10.0.0.1:80"), cp::TcpState::established, {}, 78, 1000}};
    owners.looked = true;
    cp::SocketOwner login;
    login.pid = 4242;
    login.command = "loginclient";
    login.unknown = cp::SocketOwner::Unknown::none;
    owners.by_inode[77] = login;
    owners.by_inode[78] = login;
    owners.by_inode[78].pid = 5151;
    owners.by_inode[78].command = "curl";
  }
  std::vector<std::uint16_t> kept(const cmd::CensusFilter& f) const {
    std::vector<std::uint16_t> ports;
    for (const auto& use : cmd::filtered(census, f, owners).uses) ports.push_back(use.local.port());
    return ports;
  }
};
using Ports = std::vector<std::uint16_t>;
}  // namespace

TEST_CASE("census: states by ss's names and the kernel's, anything else refused with the list", "[census]") {
  CHECK(cmd::parse_state("time-wait") == cp::TcpState::time_wait);
  CHECK(cmd::parse_state("TIME_WAIT") == cp::TcpState::time_wait);
  CHECK(cmd::parse_state("Established") == cp::TcpState::established);
  CHECK(cmd::parse_state("syn-sent") == cp::TcpState::syn_sent);
  const auto bad = cmd::parse_state("timewait");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error(), Contains("'timewait' is not a TCP state") && Contains("time-wait") && Contains("listen"));
}

TEST_CASE("census: each filter alone, and combined", "[census]") {
  const Host host;
  CHECK(host.kept({}) == Ports{40000, 40001, 40002, 50000});
  CHECK(host.kept({.ports = cp::PortRange::make(40001, 40002).value()}) == Ports{40001, 40002});
  CHECK(host.kept({.states = {cp::TcpState::time_wait}}) == Ports{40000, 40001});
  CHECK(host.kept({.states = {cp::TcpState::time_wait, cp::TcpState::established}}) ==
        Ports{40000, 40001, 40002, 50000});
  CHECK(host.kept({.to = ep("10.0.0.1:80")}) == Ports{50000});
  CHECK(host.kept({.pid = 4242}) == Ports{40002});
  CHECK(host.kept({.pid = 1}).empty());
  // Combined: every part must hold.
  CHECK(host.kept({.states = {cp::TcpState::established}, .to = ep("127.0.0.1:7000")}) == Ports{40002});
  CHECK(host.kept({.ports = cp::PortRange::make(40000, 40001).value(), .states = {cp::TcpState::established}}).empty());
  CHECK(host.kept({.states = {cp::TcpState::established}, .pid = 5151}) == Ports{50000});
}

TEST_CASE("census: the text and the JSON say what was filtered and who holds each socket", "[census]") {
  const Host host;
  const cmd::CensusFilter filter{.states = {cp::TcpState::established}, .to = ep("127.0.0.1:7000")};
  const auto shown = cmd::filtered(host.census, filter, host.owners);
  const std::string text = cmd::census_text(shown, filter, 0, host.owners);
  CHECK_THAT(text, Contains("connpolicy census: 1 socket(s) state ESTABLISHED, to 127.0.0.1:7000 (from netlink "
                            "sock_diag)\n"));
  CHECK_THAT(text, Contains("  ESTABLISHED  127.0.0.1:40002 -> 127.0.0.1:7000  held by pid 4242 (loginclient), uid "
                            "1000\n"));
  const auto j = nlohmann::json::parse(cmd::census_json(shown, filter, 0, host.owners).dump());
  CHECK(j["version"] == 2);
  CHECK(j["filters"]["states"] == nlohmann::json::array({"ESTABLISHED"}));
  CHECK(j["filters"]["to"] == "127.0.0.1:7000");
  CHECK(j["filters"]["pid"].is_null());
  REQUIRE(j["sockets"].size() == 1);
  CHECK(j["sockets"][0]["owner"]["pid"] == 4242);
  CHECK(j["sockets"][0]["owner"]["command"] == "loginclient");
  CHECK(j["sockets"][0]["owner"]["uid"] == 1000);
  const cmd::CensusFilter waits{.states = {cp::TcpState::time_wait}};
  const auto tw = nlohmann::json::parse(
      cmd::census_json(cmd::filtered(host.census, waits, host.owners), waits, 0, host.owners).dump());
  CHECK(tw["sockets"][0]["owner"]["unknown"] == "time_wait");
  CHECK_THAT(cmd::census_text(cmd::filtered(host.census, waits, host.owners), waits, 0, host.owners),
             Contains("30 s left  no process (TIME_WAIT: the kernel holds it)"));
  const cp::SocketOwners not_looked;
  CHECK(
      nlohmann::json::parse(cmd::census_json(host.census, {}, 0, not_looked).dump())["sockets"][0]["owner"].is_null());
}

#ifdef _WIN32
// Windows' TCP table gives each socket's owning pid: a connection of this process's own is found
// with this process's pid and its image name. (It sends a byte first: Wine 8 finds a socket's
// process by the descriptor the process holds, which it takes only once the socket carries data.)
TEST_CASE("census: Windows' table names the process that holds a socket", "[census][windows]") {
  WSADATA data;
  REQUIRE(::WSAStartup(MAKEWORD(2, 2), &data) == 0);
  const SOCKET listener = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  const SOCKET client = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  REQUIRE(listener != INVALID_SOCKET);
  REQUIRE(client != INVALID_SOCKET);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int size = sizeof at;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &size) == 0);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  const SOCKET served = ::accept(listener, nullptr, nullptr);
  REQUIRE(served != INVALID_SOCKET);
  char byte = 'x';
  REQUIRE(::send(client, &byte, 1, 0) == 1);
  REQUIRE(::recv(served, &byte, 1, 0) == 1);
  sockaddr_in mine{};
  size = sizeof mine;
  REQUIRE(::getsockname(client, reinterpret_cast<sockaddr*>(&mine), &size) == 0);
  const auto port = ntohs(mine.sin_port);
  auto census = cp::KernelCensus().survey(cp::PortRange::make(port, port).value());
  REQUIRE(census);
  const auto it = std::ranges::find_if(census->uses, [&](const cp::PortUse& u) {
    return u.local.port() == port && u.state == cp::TcpState::established;
  });
  REQUIRE(it != census->uses.end());
  CHECK(it->pid == static_cast<std::uint32_t>(::GetCurrentProcessId()));
  const auto owners = cp::find_socket_owners(census->uses);
  const auto owner = owners.of(*it);
  CHECK(owner.pid == static_cast<std::uint32_t>(::GetCurrentProcessId()));
  CHECK_THAT(owner.command, Contains("connpolicy_command_tests"));
  ::closesocket(served);
  ::closesocket(client);
  ::closesocket(listener);
  ::WSACleanup();
}
#endif
