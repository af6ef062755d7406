// Whether an Asio operation blocks its io thread: run the io_context (on the calling thread, its
// only one) with a 10 ms steady_timer beside the operation, and see how late the timer fired.
// Include <asio.hpp> first.
#pragma once
#include <chrono>
#include <string>

namespace test_support {

struct IoThreadWatch {
  std::chrono::steady_clock::duration late;             // the 10 ms timer's lateness
  std::chrono::steady_clock::duration completed_after;  // from the start to the operation's handler
  std::string said() const {
    using namespace std::chrono;
    return "the 10 ms timer fired " + std::to_string(duration_cast<microseconds>(late).count()) +
           " us late; the operation took " + std::to_string(duration_cast<milliseconds>(completed_after).count()) +
           " ms";
  }
};

// `start(completed)` begins the operation; its handler calls completed(). Runs `io` up to 30 s.
template <class Start>
IoThreadWatch watch_io_thread(asio::io_context& io, Start start) {
  using clock = std::chrono::steady_clock;
  clock::time_point completed{}, fired{};
  const clock::time_point begin = clock::now();
  start([&completed] { completed = clock::now(); });
  asio::steady_timer tick(io, std::chrono::milliseconds(10));
  tick.async_wait([&fired](std::error_code) { fired = clock::now(); });
  io.run_for(std::chrono::seconds(30));
  return {fired - (begin + std::chrono::milliseconds(10)), completed - begin};
}

}  // namespace test_support
