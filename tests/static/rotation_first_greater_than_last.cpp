// Must not compile: a constant port range whose first port is above its last.
// expected-diagnostic: port_range_first_is_greater_than_last
import connpolicy;
int main() {
  connpolicy::FixedPortRotation rotation{40009, 40000};
  return rotation.range().size() == 0;
}
