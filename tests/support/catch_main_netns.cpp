// main() for tests that hold real sockets on loopback (integration, command): each test process
// enters a network namespace of its own first, when the host allows it (root, or unprivileged
// user namespaces), so no other test running beside it can take, reset or count its ports and
// TIME_WAITs. ctest runs each test case in a process of its own, so every case gets a fresh
// loopback. Elsewhere (or with CONNPOLICY_TEST_HOST_NETNS=1) the tests run on the host's loopback
// as before, with port blocks picked free (free_port_block).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <sched.h>

#include <cstdio>
#include <cstdlib>

#include "netns.hpp"

int main(int argc, char* argv[]) {
  const char* host = std::getenv("CONNPOLICY_TEST_HOST_NETNS");
  if (!(host && *host == '1') && ::unshare(CLONE_NEWNET) == 0 && !test_support::in_loopback_only_namespace())
    std::fprintf(stderr, "note: own network namespace made, but its loopback would not come up\n");
  return Catch::Session().run(argc, argv);
}
