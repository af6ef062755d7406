// Must not compile: port 0 means "any port" and cannot be part of a range.
import connpolicy;
int main() {
  constexpr connpolicy::PortRange range{0, 10};
  return range.size() == 0;
}
