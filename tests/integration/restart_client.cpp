// Process A of the restart test: makes N connections to a server through a FixedPortRotation
// over a range, closing each first (so its ports sit in TIME_WAIT once the server closes), and
// exits. Prints the ports it used, one line.
//   restart_client HOST:PORT FIRST LAST N
#include <cstdio>
#include <cstdlib>
#include <string>
import connpolicy;

namespace cp = connpolicy;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: restart_client HOST:PORT FIRST LAST N\n");
    return 2;
  }
  const auto server = cp::Endpoint::parse(argv[1]);
  auto rotation = cp::FixedPortRotation::make(std::atol(argv[2]), std::atol(argv[3]));
  if (!server || !rotation) {
    std::fprintf(stderr, "restart_client: bad arguments\n");
    return 2;
  }
  cp::Connector<cp::FixedPortRotation> client{*rotation};
  const int n = std::atoi(argv[4]);
  for (int i = 0; i < n; ++i) {
    auto s = client.connect(*server);
    if (!s) {
      std::fprintf(stderr, "restart_client: %s\n", s.error().message().c_str());
      return 1;
    }
    std::printf("%u ", static_cast<unsigned>(s->local_endpoint().value().port()));
  }  // each socket closes here, first
  std::printf("\n");
  return 0;
}
