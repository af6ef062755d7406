// Names of SocketOption as the platform's own API calls them, for messages. Shared by the POSIX
// and the Winsock NativeSystem, so both say the same thing about the same option.
module;
#include <string_view>
module connpolicy.core;

namespace connpolicy {

std::string_view to_string(SocketOption option) noexcept {
  switch (option) {
    case SocketOption::reuse_address: return "SO_REUSEADDR";
#ifdef _WIN32
    case SocketOption::bind_address_no_port: return "SO_REUSE_UNICASTPORT";
#else
    case SocketOption::bind_address_no_port: return "IP_BIND_ADDRESS_NO_PORT";
#endif
    case SocketOption::local_port_range: return "IP_LOCAL_PORT_RANGE";
    case SocketOption::linger_reset: return "SO_LINGER{1,0}";
    case SocketOption::no_delay: return "TCP_NODELAY";
    case SocketOption::exclusive_address: return "SO_EXCLUSIVEADDRUSE";
  }
  return "option";
}

}  // namespace connpolicy
