// An observer that keeps every AttemptEvent, and events as comparable lines: how tests compare
// what two drivers (or a driver and the core driven by hand) did.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>
import connpolicy;

namespace test_support {

struct Recorder {
  std::vector<connpolicy::AttemptEvent>* events;
  void operator()(const connpolicy::AttemptEvent& e) const { events->push_back(e); }
};

// An observer whose body a test sets after the connector exists (so the body may use the
// connector: connect again from inside the call, say).
struct HookObserver {
  std::function<void(const connpolicy::AttemptEvent&)>* body;
  void operator()(const connpolicy::AttemptEvent& e) const { (*body)(e); }
};

// An observer that only counts attempts: `Count` is int, or std::atomic<int> when threads share it.
template <class Count>
struct CountEvents {
  Count* count;
  void operator()(const connpolicy::AttemptEvent&) const { ++*count; }
};

// "2 127.0.0.1:7000 from 0.0.0.0:40003 connect connection refused -> retry 20000000" (the delay
// in the clock's ticks).
inline std::string event_line(const connpolicy::AttemptEvent& e) {
  namespace cp = connpolicy;
  std::string s = std::to_string(e.attempt) + " " + e.remote.to_string() + " from " +
                  (e.local ? e.local->to_string() : std::string("kernel")) + " " + std::string(cp::to_string(e.step)) +
                  " " + (e.connected() ? std::string("connected") : e.error.message());
  if (e.action)
    s += " -> " + std::string(cp::to_string(*e.action)) + " " + std::to_string(cp::Timer::duration(e.delay).count());
  return s;
}
inline std::vector<std::string> event_lines(const std::vector<connpolicy::AttemptEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(event_line(e));
  return out;
}

}  // namespace test_support
