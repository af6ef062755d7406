// "late.test" for Happy Eyeballs tests in a network namespace of their own: its A record
// (127.0.0.1, black-holed) answered at once, its AAAA record (::1, a listener that never accepts)
// `aaaa_after` late, by a FakeNameServer on 127.0.0.1:53, both at one port. Include after
// `import connpolicy;`, in a process whose resolv.conf names 127.0.0.1 (netns.hpp's
// dual_test_hosts()).
#pragma once
#include <chrono>
#include "black_hole.hpp"
#include "fake_name_server.hpp"

namespace test_support {

struct LateAaaa {
  explicit LateAaaa(std::chrono::milliseconds aaaa_after)
      : v6(listen_on_ipv6_loopback()), hole(black_hole(connpolicy::Family::ipv4, v6.port)),
        dns("late.test", {{{127, 0, 0, 1}}, std::chrono::milliseconds(0)},
            {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, aaaa_after}) {}
  // Everything could be made: the listener, a full accept queue, port 53.
  bool ok() const { return v6.port != 0 && !hole.fillers.empty() && dns.ok(); }
  connpolicy::HostPort name() const { return *connpolicy::HostPort::from("late.test", v6.port); }

  Ipv6Listener v6;
  BlackHole hole;
  FakeNameServer dns;
};

}  // namespace test_support
