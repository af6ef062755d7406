// Endpoint: an IPv4 or IPv6 address (with scope id) and a port. Numeric only: resolving names is
// a different job (and a different failure), so Endpoint::parse never touches DNS.
module;
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#endif
export module connpolicy.core:endpoint;
import :error;

export namespace connpolicy {

class NetError;

enum class Family : std::uint8_t { ipv4, ipv6 };
// A family as a name lookup's messages name it: "IPv6 (AAAA)", "IPv4 (A)".
constexpr std::string_view lookup_name(Family family) noexcept {
  return family == Family::ipv6 ? "IPv6 (AAAA)" : "IPv4 (A)";
}

class Endpoint {
 public:
  // 0.0.0.0:0, the unspecified IPv4 address.
  constexpr Endpoint() noexcept = default;

  // "127.0.0.1:80", "[::1]:80", "[fe80::1%2]:80", "[fe80::1%eth0]:80". Port 0 is allowed (it means
  // "any port" when binding). Anything else gets Errc::invalid_argument and says what is wrong.
  static expected<Endpoint, NetError> parse(std::string_view text);

  static constexpr Endpoint ipv4(std::array<std::uint8_t, 4> address, std::uint16_t port) noexcept {
    Endpoint e;
    e.family_ = Family::ipv4;
    for (std::size_t i = 0; i < 4; ++i) e.bytes_[i] = address[i];
    e.port_ = port;
    return e;
  }
  static constexpr Endpoint ipv6(std::array<std::uint8_t, 16> address, std::uint16_t port,
                                 std::uint32_t scope_id = 0) noexcept {
    Endpoint e;
    e.family_ = Family::ipv6;
    e.bytes_ = address;
    e.port_ = port;
    e.scope_id_ = scope_id;
    return e;
  }
  static constexpr Endpoint loopback_v4(std::uint16_t port) noexcept { return ipv4({127, 0, 0, 1}, port); }
  static constexpr Endpoint loopback_v6(std::uint16_t port) noexcept {
    std::array<std::uint8_t, 16> a{};
    a[15] = 1;
    return ipv6(a, port);
  }
  static constexpr Endpoint any_v4(std::uint16_t port = 0) noexcept { return ipv4({0, 0, 0, 0}, port); }
  static constexpr Endpoint any_v6(std::uint16_t port = 0) noexcept { return ipv6({}, port); }

  // From what accept(), getsockname() or getpeername() filled in. Fails with invalid_argument
  // for families other than AF_INET / AF_INET6 or a short length.
  static expected<Endpoint, NetError> from_sockaddr(const sockaddr_storage& storage, std::size_t length);
  // Fills `storage` for bind()/connect(); returns the length to pass with it.
  std::size_t to_sockaddr(sockaddr_storage& storage) const noexcept;

  constexpr Family family() const noexcept { return family_; }
  constexpr bool is_v4() const noexcept { return family_ == Family::ipv4; }
  constexpr bool is_v6() const noexcept { return family_ == Family::ipv6; }
  constexpr std::uint16_t port() const noexcept { return port_; }
  constexpr std::uint32_t scope_id() const noexcept { return scope_id_; }
  // Network order; IPv4 uses the first 4 bytes.
  constexpr const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }
  constexpr Endpoint with_port(std::uint16_t port) const noexcept {
    Endpoint e = *this;
    e.port_ = port;
    return e;
  }
  // ::ffff:a.b.c.d, an IPv4 address carried by an IPv6 socket (RFC 4291 2.5.5.2). Linux connects
  // it to the IPv4 address, so every question about the address is asked of that.
  constexpr bool is_v4_mapped() const noexcept {
    if (!is_v6()) return false;
    for (std::size_t i = 0; i < 10; ++i)
      if (bytes_[i] != 0) return false;
    return bytes_[10] == 0xff && bytes_[11] == 0xff;
  }
  // The IPv4 endpoint a mapped one stands for (same port); any other endpoint as it is.
  constexpr Endpoint unmapped() const noexcept {
    if (!is_v4_mapped()) return *this;
    return ipv4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]}, port_);
  }

  // Each sees through the mapped form: [::ffff:0.0.0.0] is unspecified, [::ffff:224.0.0.1]
  // multicast. Inline (the Connector checks every destination on every connect()) and usable at
  // compile time.
  constexpr bool is_unspecified() const noexcept {  // 0.0.0.0, ::, ::ffff:0.0.0.0
    const Endpoint e = unmapped();
    for (std::size_t i = 0; i < (e.is_v4() ? 4u : 16u); ++i)
      if (e.bytes_[i] != 0) return false;
    return true;
  }
  constexpr bool is_loopback() const noexcept {  // 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104
    const Endpoint e = unmapped();
    if (e.is_v4()) return e.bytes_[0] == 127;
    for (std::size_t i = 0; i < 15; ++i)
      if (e.bytes_[i] != 0) return false;
    return e.bytes_[15] == 1;
  }
  constexpr bool is_multicast() const noexcept {  // 224.0.0.0/4, ff00::/8, ::ffff:224.0.0.0/100
    const Endpoint e = unmapped();
    return e.is_v4() ? (e.bytes_[0] & 0xf0) == 0xe0 : e.bytes_[0] == 0xff;
  }
  constexpr bool is_broadcast() const noexcept {  // 255.255.255.255, ::ffff:255.255.255.255
    const Endpoint e = unmapped();
    return e.is_v4() && e.bytes_[0] == 255 && e.bytes_[1] == 255 && e.bytes_[2] == 255 && e.bytes_[3] == 255;
  }

  // "127.0.0.1", "::1", "fe80::1%2" (the scope id is numeric, so it round-trips everywhere).
  std::string address_string() const;
  // "127.0.0.1:80", "[::1]:80": parse(to_string()) gives the same Endpoint back.
  std::string to_string() const;

  friend constexpr bool operator==(const Endpoint&, const Endpoint&) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(const Endpoint&, const Endpoint&) noexcept = default;

 private:
  Family family_ = Family::ipv4;
  std::array<std::uint8_t, 16> bytes_{};
  std::uint16_t port_ = 0;
  std::uint32_t scope_id_ = 0;
};

}  // namespace connpolicy

export template <>
struct std::hash<connpolicy::Endpoint> {
  std::size_t operator()(const connpolicy::Endpoint& e) const noexcept {
    // FNV-1a over every field that operator== compares.
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(static_cast<std::uint64_t>(e.family()));
    for (std::uint8_t b : e.bytes()) mix(b);
    mix(e.port());
    mix(e.scope_id());
    return static_cast<std::size_t>(h);
  }
};
