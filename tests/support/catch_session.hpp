// Runs Catch2's session (tests/support/catch_session.cpp): what every test program's main() ends with.
#pragma once

namespace test_support {
int run_catch_session(int argc, char* argv[]);
}  // namespace test_support
