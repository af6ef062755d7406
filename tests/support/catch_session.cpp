// Catch2's implementation, compiled once for every test program (it is the slowest file of the
// suite to compile); each program's main() is one of the two small files beside it, and runs the
// session through run_catch_session (Catch2 v2 declares its Session only beside its implementation).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch_session.hpp"

int test_support::run_catch_session(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
