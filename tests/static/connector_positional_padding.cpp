// Must not compile: a Connector is made from its two policies or from a Config, by name; the old
// positional form padded with {} for the parts left at their defaults is gone.
// expected-diagnostic: config
#include <chrono>
import connpolicy;
namespace cp = connpolicy;
int main() {
  using namespace std::chrono_literals;
  cp::Connector<cp::NoBind, cp::NoRetry> client{cp::NoBind{}, {}, {}, {}, cp::ConnectorOptions{.connect_timeout = 1s}};
  return client.options().connect_timeout == 1s ? 0 : 1;
}
