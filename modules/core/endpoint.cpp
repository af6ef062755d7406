module;
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>  // if_nametoindex
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif
module connpolicy.core;
import :quoting;

namespace connpolicy {
namespace {

constexpr std::size_t max_text = 128;  // longer than any address + scope + port

using detail::all_digits;
using detail::is_digit;

using detail::quoted;

unexpected<NetError> invalid(std::string_view text, std::string why) {
  return unexpected(
      NetError(Step::parse, LibraryError::invalid_endpoint, "cannot read " + quoted(text) + " as an endpoint: " + why));
}

// Four decimal numbers 0-255 separated by dots, no leading zeros (so "010" is not read as octal
// by one parser and as decimal by another).
bool parse_ipv4(std::string_view s, std::array<std::uint8_t, 4>& out) noexcept {
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t dot = s.find('.');
    const std::string_view part = i < 3 ? s.substr(0, dot) : s;
    if (i < 3 && dot == std::string_view::npos) return false;
    if (!all_digits(part) || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    int value = 0;
    for (char c : part) value = value * 10 + (c - '0');
    if (value > 255) return false;
    out[i] = static_cast<std::uint8_t>(value);
    if (i < 3) s.remove_prefix(dot + 1);
  }
  return true;
}

// The part of parse() between '[' and ']': an IPv6 address, with a numeric or named scope id.
expected<Endpoint, NetError> parse_ipv6_host(std::string_view text, std::string_view host, std::uint16_t port) {
  const std::size_t percent = host.find('%');
  const std::string_view address = host.substr(0, percent);
  if (address.empty()) return invalid(text, "no IPv6 address between '[' and ']'");
  std::array<std::uint8_t, 16> v6{};
  if (inet_pton(AF_INET6, std::string(address).c_str(), v6.data()) != 1) {
    std::array<std::uint8_t, 4> v4{};
    if (parse_ipv4(address, v4)) return invalid(text, "an IPv4 address takes no brackets");
    return invalid(text, quoted(address) + " is not an IPv6 address");
  }
  std::uint32_t scope = 0;
  if (percent != std::string_view::npos) {
    const std::string_view scope_text = host.substr(percent + 1);
    if (scope_text.empty()) return invalid(text, "empty scope id after '%'");
    if (all_digits(scope_text)) {
      if (scope_text.size() > 10 || std::stoull(std::string(scope_text)) > 0xffffffffull)
        return invalid(text, "scope id " + std::string(scope_text) + " is out of range");
      scope = static_cast<std::uint32_t>(std::stoull(std::string(scope_text)));
    } else {
      scope = if_nametoindex(std::string(scope_text).c_str());
      if (scope == 0) return invalid(text, "no network interface is named " + quoted(scope_text));
    }
  }
  return Endpoint::ipv6(v6, port, scope);
}

}  // namespace

expected<Endpoint, NetError> Endpoint::parse(std::string_view text) {
  if (std::string why =
          detail::screen_problem(text, max_text, "address:port, e.g. 127.0.0.1:80 or [::1]:80", "endpoint");
      !why.empty())
    return invalid(text, why);

  std::string_view host, port_text;
  const bool bracketed = text.front() == '[';
  if (bracketed) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid(text, "missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return invalid(text, "missing ':port' after ']'");
    if (rest.front() != ':') return invalid(text, "expected ':' right after ']'");
    port_text = rest.substr(1);
  } else {
    const auto colons = std::ranges::count(text, ':');
    if (colons == 0) return invalid(text, "missing ':port'");
    if (colons > 1) return invalid(text, "an IPv6 address needs brackets, e.g. [::1]:80");
    const std::size_t colon = text.find(':');
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }

  const auto [port, port_problem] = detail::read_port(port_text);
  if (!port_problem.empty()) return invalid(text, port_problem);

  if (!bracketed) {
    if (host.empty()) return invalid(text, "missing address before ':'");
    std::array<std::uint8_t, 4> v4{};
    if (parse_ipv4(host, v4)) return ipv4(v4, port);
    if (std::ranges::any_of(host, [](char c) { return !is_digit(c) && c != '.'; }))
      return invalid(text, quoted(host) + " is not a numeric IPv4 address (names are not resolved here)");
    return invalid(text, quoted(host) + " is not an IPv4 address (four numbers 0-255 with dots, no leading zeros)");
  }

  return parse_ipv6_host(text, host, port);
}

expected<Endpoint, NetError> Endpoint::from_sockaddr(const sockaddr_storage& storage, std::size_t length) {
  if (storage.ss_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, &storage, sizeof in);
    std::array<std::uint8_t, 4> a{};
    std::memcpy(a.data(), &in.sin_addr, 4);
    return ipv4(a, ntohs(in.sin_port));
  }
  if (storage.ss_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &storage, sizeof in6);
    std::array<std::uint8_t, 16> a{};
    std::memcpy(a.data(), &in6.sin6_addr, 16);
    return ipv6(a, ntohs(in6.sin6_port), in6.sin6_scope_id);
  }
  // Not an IP address, or too short to hold one: bad input to this function (invalid_argument),
  // not a family this host lacks.
  const bool ip = storage.ss_family == AF_INET || storage.ss_family == AF_INET6;
  return unexpected(
      NetError(Step::parse, LibraryError::invalid_endpoint,
               ip ? "a socket address of family " + std::to_string(storage.ss_family) + " needs " +
                        std::to_string(storage.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)) +
                        " bytes, and " + std::to_string(length) + " were given"
                  : "a socket address of family " + std::to_string(storage.ss_family) + " (length " +
                        std::to_string(length) + ") is not IPv4 or IPv6"));
}

std::size_t Endpoint::to_sockaddr(sockaddr_storage& storage) const noexcept {
  storage = {};
  if (is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port_);
    std::memcpy(&in.sin_addr, bytes_.data(), 4);
    std::memcpy(&storage, &in, sizeof in);
    return sizeof in;
  }
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port_);
  in6.sin6_scope_id = scope_id_;
  std::memcpy(&in6.sin6_addr, bytes_.data(), 16);
  std::memcpy(&storage, &in6, sizeof in6);
  return sizeof in6;
}

std::string Endpoint::address_string() const {
  if (is_v4()) {
    return std::to_string(bytes_[0]) + "." + std::to_string(bytes_[1]) + "." + std::to_string(bytes_[2]) + "." +
           std::to_string(bytes_[3]);
  }
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes_.data(), buffer, sizeof buffer);
  std::string s = buffer;
  if (scope_id_ != 0) s += "%" + std::to_string(scope_id_);
  return s;
}

std::string Endpoint::to_string() const {
  const std::string port = std::to_string(port_);
  return is_v4() ? address_string() + ":" + port : "[" + address_string() + "]:" + port;
}

}  // namespace connpolicy
