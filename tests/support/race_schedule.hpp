// A race's schedule as the fake system recorded it: each connect(), where to and when, in ms
// after a start time on the ManualTimer. Shared by the Happy Eyeballs unit tests.
#pragma once
#include <chrono>
#include <vector>
import connpolicy;
import connpolicy.testing;

namespace test_support {

struct Start {
  connpolicy::Endpoint to;
  long long at_ms;
  bool operator==(const Start&) const = default;
};

inline std::vector<Start> starts(const connpolicy::FakeSystem& sys, connpolicy::Timer::time_point t0) {
  std::vector<Start> out;
  for (const auto& c : sys.calls())
    if (c.call == connpolicy::Call::connect)
      out.push_back({*c.endpoint, std::chrono::duration_cast<std::chrono::milliseconds>(c.time - t0).count()});
  return out;
}

inline long long ms_since(const connpolicy::ManualTimer& t, connpolicy::Timer::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.now() - t0).count();
}

}  // namespace test_support
