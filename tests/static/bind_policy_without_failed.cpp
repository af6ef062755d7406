// Must not compile: a bind policy without failed() is not a BindPolicy.
// expected-diagnostic: BindPolicy
import connpolicy;
namespace cp = connpolicy;
struct NoFailed {
  static constexpr bool can_rebind = false;
  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint&) const { return cp::BindPlan{}; }
};
int main() {
  cp::Connector<NoFailed> c;
  return c.connect(cp::Endpoint::loopback_v4(1)) ? 0 : 1;
}
