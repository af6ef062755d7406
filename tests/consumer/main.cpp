#include <cstdio>
#include <string>  // std::string comparisons: importers include the std headers they use
import connpolicy;
import connpolicy.testing;

int main() {
  auto e = connpolicy::Endpoint::parse("[::1]:7000");
  if (!e || e->port() != 7000 || e->to_string() != "[::1]:7000") return 1;
  connpolicy::FakeSystem fake;
  auto port = connpolicy::find_free_port(connpolicy::Endpoint::loopback_v4(0), fake);
  if (!port || *port != connpolicy::FakeSystem::first_ephemeral_port || fake.open_handles() != 0) return 2;
  auto real = connpolicy::find_free_port(connpolicy::Endpoint::loopback_v4(0));
  if (!real || *real == 0) return 3;
  std::puts("consumer: ok");
  return 0;
}
