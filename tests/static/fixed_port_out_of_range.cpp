// Must not compile: 70000 is not a port.
import connpolicy;
int main() {
  constexpr connpolicy::FixedPort port{70000};
  return port.port() == 0;
}
