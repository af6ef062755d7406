// Must not compile: port 0 means "any port" and cannot be part of a range.
// expected-diagnostic: port_range_first_port_is_0_use_1_to_65535
import connpolicy;
int main() {
  constexpr connpolicy::PortRange range{0, 10};
  return range.size() == 0;
}
