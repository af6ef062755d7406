// Must not compile: 70000 is not a port.
// expected-diagnostic: fixed_port_must_be_1_to_65535
import connpolicy;
int main() {
  constexpr connpolicy::FixedPort port{70000};
  return port.port() == 0;
}
