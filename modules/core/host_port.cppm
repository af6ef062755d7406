// HostPort: where a client connects, as people write it: a host name or a numeric address, and a
// port. "login.example.com:7000", "localhost:7000", "127.0.0.1:7000", "[::1]:7000".
//
// Parsing never resolves: a name is checked for the shape DNS allows and kept as text; a
// numeric address is read as Endpoint::parse reads it and needs no resolver at all. Connect to
// one with Connector::connect(HostPort, resolver) or connpolicy::asio::async_connect.
module;
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
export module connpolicy.core:host_port;
import :error;
import :endpoint;
import :net_error;

export namespace connpolicy {

class HostPort {
 public:
  // A name is labels of letters, digits, '-' and '_' joined by dots: each label 1-63 characters,
  // not starting or ending with '-'; 253 characters in all, and a final dot is allowed. An IPv6
  // address takes brackets. A name is never a number in disguise: text getaddrinfo would read as
  // an IPv4 address ("0x7f.0.0.1", "0x7f000001", "127.1") and a last label of all digits are
  // refused. Port 0 is not a destination. Anything else gets Errc::invalid_argument, saying what
  // is wrong.
  static expected<HostPort, NetError> parse(std::string_view text);
  // The same checks, for a host and a port held apart (an IPv6 address without brackets).
  static expected<HostPort, NetError> from(std::string_view host, std::uint16_t port);
  // A numeric address: nothing to resolve.
  explicit HostPort(const Endpoint& address)
      : host_(address.address_string()), port_(address.port()), numeric_(address) {}

  // The name, or the numeric address as text ("::1", without brackets).
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  // The address, when the host is numeric.
  const std::optional<Endpoint>& numeric() const noexcept { return numeric_; }
  // "login.example.com:7000", "[::1]:7000": parse(to_string()) gives the same HostPort back.
  std::string to_string() const;

  friend bool operator==(const HostPort&, const HostPort&) = default;

 private:
  HostPort(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port) {}

  std::string host_;
  std::uint16_t port_ = 0;
  std::optional<Endpoint> numeric_;
};

}  // namespace connpolicy
