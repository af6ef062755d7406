// Waiting for work another thread finishes on its own time (a helper thread's census or lookup).
#pragma once
#include <chrono>
#include <thread>

namespace test_support {

// Until `done` or 10 s, in steps of 5 ms; whether it came.
template <class Done>
bool eventually(Done done) {
  for (int i = 0; i < 2000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return done();
}

}  // namespace test_support
