// The words of `connpolicy probe`: each --bind and --retry, and what is refused, with the reason.
#include <catch2/catch.hpp>

#include "census_view.hpp"
#include "probe.hpp"

namespace cp = connpolicy;
namespace cmd = connpolicy::command;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

TEST_CASE("probe: --bind takes each bind policy", "[probe-args]") {
  CHECK(std::holds_alternative<cp::NoBind>(cmd::parse_bind("none").value()));
  CHECK(std::holds_alternative<cp::EphemeralBind>(cmd::parse_bind("ephemeral").value()));
  CHECK(std::get<cp::FixedPort>(cmd::parse_bind("fixed:40000").value()).port() == 40000);
  CHECK(std::get<cp::FixedPortRotation>(cmd::parse_bind("rotation:40000-40009").value()).range() ==
        cp::PortRange::make(40000, 40009).value());
  const auto pool = std::get<cp::SourceAddressPool>(cmd::parse_bind("pool:127.0.0.2,::1,[::1]").value());
  REQUIRE(pool.addresses().size() == 3);
  CHECK(pool.addresses()[0] == cp::Endpoint::parse("127.0.0.2:0").value());
  CHECK(pool.addresses()[1] == cp::Endpoint::loopback_v6(0));
  CHECK(pool.addresses()[2] == cp::Endpoint::loopback_v6(0));
  for (const char* bad : {"", "fixed", "fixed:", "fixed:0", "fixed:70000", "fixed:4x", "rotation:9-1",
                          "pool:", "pool:zz", "pool:224.0.0.1", "random"})
    CHECK_FALSE(cmd::parse_bind(bad).has_value());
  CHECK_THAT(cmd::parse_bind("rotation:9-1").error(), Contains("the first port is greater than the last"));
  CHECK_THAT(cmd::parse_bind("random").error(), Contains("none, ephemeral, fixed:PORT"));
}

TEST_CASE("probe: --retry and durations", "[probe-args]") {
  CHECK(std::holds_alternative<cp::NoRetry>(cmd::parse_retry("none").value()));
  CHECK(std::get<cp::FixedDelayRetry>(cmd::parse_retry("fixed:10ms,3").value()).options().delay == 10ms);
  CHECK(std::get<cp::FixedDelayRetry>(cmd::parse_retry("fixed:10ms,3").value()).options().max_attempts == 3);
  const auto expo = std::get<cp::ExponentialRetry>(cmd::parse_retry("expo:10ms,2s,5").value());
  CHECK(expo.options().initial == 10ms);
  CHECK(expo.options().max_delay == 2000ms);
  CHECK(expo.options().max_attempts == 5);
  for (const char* bad : {"fixed:10ms", "fixed:10ms,0", "fixed:10ms,1001", "fixed:-1,3", "expo:10ms,5ms,3", "expo:1,2",
                          "linear:1,2", "fixed:10ms,3,4"})
    CHECK_FALSE(cmd::parse_retry(bad).has_value());
  CHECK(cmd::parse_duration("250").value() == 250ms);
  CHECK(cmd::parse_duration("2s").value() == 2000ms);
  CHECK(cmd::parse_duration("15ms").value() == 15ms);
  CHECK_FALSE(cmd::parse_duration("ms").has_value());
  CHECK_FALSE(cmd::parse_duration("1.5s").has_value());
  CHECK_FALSE(cmd::parse_duration("99999999999s").has_value());
}

TEST_CASE("census: --look-up pairs and the JSON of a census", "[census-view]") {
  const auto pair = cmd::parse_pair("127.0.0.1:40000,[::1]:7000").value();
  CHECK(pair.local == cp::Endpoint::loopback_v4(40000));
  CHECK(pair.remote == cp::Endpoint::loopback_v6(7000));
  CHECK_THAT(cmd::parse_pair("127.0.0.1:40000").error(), Contains("LOCAL,REMOTE"));
  CHECK_FALSE(cmd::parse_pair("127.0.0.1:40000,nothing").has_value());
  cp::Census c;
  c.source = cp::CensusSource::proc_net_tcp;
  c.uses = {{cp::Endpoint::loopback_v4(40000), cp::Endpoint::loopback_v4(7000), cp::TcpState::time_wait, 1230ms},
            {cp::Endpoint::any_v4(40001), cp::Endpoint::any_v4(), cp::TcpState::listen, std::nullopt}};
  const auto j =
      nlohmann::json::parse(cmd::census_json(c, {.ports = cp::PortRange::make(40000, 40009).value()}, 0, {}).dump());
  CHECK(j["census_source"] == "proc_net_tcp");
  CHECK(j["range"]["last"] == 40009);
  REQUIRE(j["sockets"].size() == 2);
  CHECK(j["sockets"][0]["time_wait_left_ms"] == 1230);
  CHECK(j["sockets"][1]["remote"].is_null());
  CHECK(j["sockets"][1]["state"] == "LISTEN");
  CHECK_THAT(cmd::census_text(c, {}, 2, {}), Contains("2 socket(s) of the 2 connection(s) asked about") &&
                                                 Contains("TIME_WAIT  127.0.0.1:40000 -> 127.0.0.1:7000  2 s left"));
}
