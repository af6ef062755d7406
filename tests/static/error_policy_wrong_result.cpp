// Must not compile: classify() must return an Action, so this is not an ErrorPolicy.
// expected-diagnostic: ErrorPolicy
import connpolicy;
namespace cp = connpolicy;
struct ReturnsBool {
  bool classify(const cp::Failure&) const { return false; }
};
int main() {
  cp::Connector<cp::NoBind, cp::NoRetry, ReturnsBool> c;
  return c.connect(cp::Endpoint::loopback_v4(1)) ? 0 : 1;
}
