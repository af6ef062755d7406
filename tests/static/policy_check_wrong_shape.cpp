// Must not compile: a policy's optional check() that returns bool would never be called (the
// connector asks for `expected<void, NetError> check() const`); the error names the hook.
// expected-diagnostic: 'check'
import connpolicy;
namespace cp = connpolicy;
struct StrictRetry : cp::NoRetry {
  bool check() const { return false; }  // meant to refuse its options: never asked
};
int main() {
  cp::Connector<cp::NoBind, StrictRetry> client;
  return client.connect(cp::Endpoint::loopback_v4(1)) ? 0 : 1;
}
