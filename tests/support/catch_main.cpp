// main() for the tests that need nothing of the host: unit tests on fakes, the command's pure parts.
#include "catch_session.hpp"

int main(int argc, char* argv[]) { return test_support::run_catch_session(argc, argv); }
