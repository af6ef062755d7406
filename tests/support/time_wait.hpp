// For the real-socket tests whose assertion needs a TIME_WAIT to last (a port that stays blocked,
// a census that must list it, a rotation that must learn its time left). Include after Catch2.
#pragma once
#include "netns.hpp"

namespace test_support {
// Says, where a test begins, that it needs its TIME_WAITs to last: catch_main_netns.cpp set
// tcp_rfc1337 = 1 in the test's own namespace. On the host's loopback (no namespace of its own)
// the host's setting stands: a warning says the test may meet a TIME_WAIT that ended early.
inline void needs_lasting_time_wait() {
#ifdef __linux__
  if (!time_waits_last())
    WARN("net.ipv4.tcp_rfc1337 is 0 here (no network namespace of the test's own): an RST may end a "
         "TIME_WAIT this test counts on before its 60 s");
#endif
}
}  // namespace test_support
