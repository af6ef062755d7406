// Runs a program (an example, as ctest runs it) in a network namespace of its own, with its
// loopback up and TIME_WAITs that last their 60 s (tcp_rfc1337 = 1, see netns.hpp), as
// catch_main_netns.cpp does for the test programs:
//   connpolicy_in_own_netns PROGRAM [ARGS...]
// Where the host gives no namespace (not root), the program runs on the host's loopback, with a note.
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "netns.hpp"

int main(int argc, char* argv[]) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: connpolicy_in_own_netns PROGRAM [ARGS...]\n");
    return 2;
  }
  if (::unshare(CLONE_NEWNET) != 0)
    std::fprintf(stderr, "note: no network namespace of its own here (%s): %s runs on the host's loopback\n",
                 std::strerror(errno), argv[1]);
  else if (!test_support::in_loopback_only_namespace() || !test_support::make_time_waits_last())
    std::fprintf(stderr, "note: own network namespace made, but loopback or tcp_rfc1337 could not be set up\n");
  ::execv(argv[1], argv + 1);
  std::fprintf(stderr, "connpolicy_in_own_netns: cannot run %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
