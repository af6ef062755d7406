// main() for tests that hold real sockets on loopback (integration, command, asio): each test
// process enters a network namespace of its own first, when the host allows it (root, or
// unprivileged user namespaces), so no other test running beside it can take, reset or count its
// ports and TIME_WAITs. ctest runs each test case in a process of its own, so every case gets a
// fresh loopback. In that namespace TIME_WAITs are made to last their 60 s (tcp_rfc1337 = 1, see
// netns.hpp): tests that need one to last say so with `needs_lasting_time_wait()`.
// Elsewhere (or with CONNPOLICY_TEST_HOST_NETNS=1) the tests run on the host's loopback, with
// port blocks picked free (free_port_block) and the host's tcp_rfc1337 left as it is.
#include <sched.h>

#include <cstdio>
#include <cstdlib>

#include "catch_session.hpp"
#include "netns.hpp"

int main(int argc, char* argv[]) {
  const char* host = std::getenv("CONNPOLICY_TEST_HOST_NETNS");
  if (!(host && *host == '1') && ::unshare(CLONE_NEWNET) == 0) {
    if (!test_support::in_loopback_only_namespace())
      std::fprintf(stderr, "note: own network namespace made, but its loopback would not come up\n");
    if (!test_support::make_time_waits_last())
      std::fprintf(stderr, "note: own network namespace made, but tcp_rfc1337 could not be set to 1\n");
  }
  return test_support::run_catch_session(argc, argv);
}
