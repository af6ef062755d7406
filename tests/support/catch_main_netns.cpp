// main() for tests that hold real sockets on loopback (integration, command, asio): each test
// process enters a network namespace of its own first, when the host allows it (root, or
// unprivileged user namespaces), so no other test running beside it can take, reset or count its
// ports and TIME_WAITs. ctest runs each test case in a process of its own, so every case gets a
// fresh loopback. In that namespace TIME_WAITs are made to last their 60 s (tcp_rfc1337 = 1, see
// netns.hpp): tests that need one to last say so with `needs_lasting_time_wait()`.
// Elsewhere (or with CONNPOLICY_TEST_HOST_NETNS=1) the tests run on the host's loopback, with
// port blocks picked free (free_port_block) and the host's tcp_rfc1337 left as it is.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "catch_session.hpp"
#include "netns.hpp"

int main(int argc, char* argv[]) {
  const char* host = std::getenv("CONNPOLICY_TEST_HOST_NETNS");
  if (!(host && *host == '1')) {
    // Without a namespace (not root) the tests run on the host's loopback quietly, as before.
    const std::string why = test_support::enter_own_netns();
    if (!why.empty() && why.rfind("no network namespace", 0) != 0) std::fprintf(stderr, "note: %s\n", why.c_str());
  }
  return test_support::run_catch_session(argc, argv);
}
