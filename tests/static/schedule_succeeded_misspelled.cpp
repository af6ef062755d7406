// Must not compile: a retry schedule whose success hook is spelled on_success() would never hear
// of a success (the connector calls succeeded()); the error names the hook.
// expected-diagnostic: 'succeeded'
#include <optional>
import connpolicy;
namespace cp = connpolicy;
struct RefillingRetry {
  struct schedule_type {
    cp::expected<cp::Timer::duration, cp::GiveUp> next_delay(const cp::NetError&) {
      return cp::unexpected(cp::GiveUp::no_retry);
    }
    std::optional<cp::Timer::duration> time_left() const { return std::nullopt; }
    void on_success() { ++refills; }
    int refills = 0;
  };
  schedule_type schedule(cp::Timer&) const { return {}; }
};
int main() {
  cp::Connector<cp::NoBind, RefillingRetry> client;
  return client.connect(cp::Endpoint::loopback_v4(1)) ? 0 : 1;
}
