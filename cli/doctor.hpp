// `connpolicy doctor`: the client side of this host at a glance, and what to do about it.
// diagnose() is pure (facts and a census in, a Diagnosis out), so tests give it made-up hosts.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "host_facts.hpp"
import connpolicy;

namespace connpolicy::command {

// The client-side sockets towards one remote end (server-side sockets, whose local port is a
// port this host listens on, are left out: their "remote" is a client).
//
// Linux's connect() never picks a port that a socket claimed with bind() (a fixed port,
// FixedPortRotation, bind() without IP_BIND_ADDRESS_NO_PORT), towards any destination, for as
// long as any socket on it lives, TIME_WAITs included; a port connect() chose itself it shares
// across destinations. The kernel does not say which way a port was taken, so the ports left are
// a span: `ephemeral_left` counts as bound only the listeners and the held ports of --range (the
// ports the user says are bound); `ephemeral_left_at_least` counts every port held towards
// anywhere as bound.
struct Destination {
  Endpoint remote;
  int time_wait = 0;                        // sockets in TIME_WAIT towards it
  std::size_t ephemeral_held = 0;           // ports of the ephemeral range they hold
  std::size_t ephemeral_left = 0;           // ports connect() can still pick towards it, at most
  std::size_t ephemeral_left_at_least = 0;  // ... if every port held elsewhere was bound
  std::optional<SocketOwner> held_most_by;  // the process with the most live sockets towards it
  std::size_t held_most = 0;                // how many
};

// One port of --range and every socket on it (empty: free).
struct RangePort {
  std::uint16_t port = 0;
  std::vector<PortUse> uses;
};

struct Finding {
  std::string id;                    // stable: see docs/command.md
  std::vector<std::uint16_t> ports;  // the ports it is about (may be empty)
  std::string text;                  // what is wrong and what to do, in one paragraph
};

struct Diagnosis {
  HostFacts facts;
  CensusSource source = CensusSource::netlink;
  std::size_t sockets = 0;
  int time_wait = 0;
  std::size_t ephemeral_usable = 0;
  std::size_t ephemeral_held_anywhere = 0;   // distinct ephemeral ports client-side sockets hold
  std::size_t ephemeral_bound_in_range = 0;  // of them, ports of --range (bound, by the user's word)
  std::vector<Destination> destinations;     // most ephemeral ports held first
  std::optional<Destination> to;             // --to, even when nothing goes there
  std::optional<PortRange> range;
  std::vector<RangePort> held;  // ports of --range that something holds, in order
  std::vector<Finding> findings;
  SocketOwners owners;  // looked: false when owners were not asked for (--no-owners)
};

// `owners`: find_socket_owners() of the census, or {} (not asked: nothing says who holds what).
Diagnosis diagnose(const HostFacts& facts, const Census& census, std::optional<PortRange> range,
                   std::optional<Endpoint> to, SocketOwners owners = {});

std::string render_text(const Diagnosis& d);
nlohmann::json to_json(const Diagnosis& d);

// One socket: JSON object and one line of text (shared with `connpolicy census`), with its owner
// when `owners` were looked up.
nlohmann::json use_json(const PortUse& use, const SocketOwners& owners);
std::string use_line(const PortUse& use, const SocketOwners& owners);
// ", held by pid 4242 (loginclient)" for a finding's text; "" when unknown or not looked up.
std::string held_by(const PortUse& use, const SocketOwners& owners);
nlohmann::json owner_json(const SocketOwner& owner);

// The census's source as the JSON names it: "netlink", "proc_net_tcp" or "tcp_table".
std::string source_id(CensusSource source);

// "42 s" (rounded up), or what the system does not say.
std::string time_left_text(const PortUse& use);

}  // namespace connpolicy::command
