// Must not compile: a bind policy's use_clock() that takes the clock by value (a copy of the
// abstract Timer cannot be made) or of the wrong type would never be handed the connector's
// clock; the error names the hook.
// expected-diagnostic: 'use_clock'
import connpolicy;
namespace cp = connpolicy;
struct TimedBind : cp::NoBind {
  void use_clock(const int& ticks) { last = ticks; }  // not a Timer&: never called
  int last = 0;
};
int main() {
  cp::Connector<TimedBind, cp::NoRetry> client;
  return client.connect(cp::Endpoint::loopback_v4(1)) ? 0 : 1;
}
