// Runs a program (an example, as ctest runs it) in a network namespace of its own, with its
// loopback up and TIME_WAITs that last their 60 s (tcp_rfc1337 = 1, see netns.hpp), as
// catch_main_netns.cpp does for the test programs:
//   connpolicy_in_own_netns PROGRAM [ARGS...]
// Where the host gives no namespace (not root), the program runs on the host's loopback, with a note.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "netns.hpp"

int main(int argc, char* argv[]) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: connpolicy_in_own_netns PROGRAM [ARGS...]\n");
    return 2;
  }
  if (const std::string why = test_support::enter_own_netns(); !why.empty())
    std::fprintf(stderr, "note: %s: %s runs as it can\n", why.c_str(), argv[1]);
  ::execv(argv[1], argv + 1);
  std::fprintf(stderr, "connpolicy_in_own_netns: cannot run %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
