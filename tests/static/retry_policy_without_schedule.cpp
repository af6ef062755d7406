// Must not compile: a retry policy without schedule() is not a RetryPolicy.
// expected-diagnostic: RetryPolicy
#include <chrono>
#include <stop_token>
import connpolicy;
namespace cp = connpolicy;
struct NoSchedule {
  struct schedule_type {};
};
int main() {
  cp::Connector<cp::NoBind, NoSchedule> c;
  return c.connect(cp::Endpoint::loopback_v4(1)) ? 0 : 1;
}
