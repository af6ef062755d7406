module;
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
module connpolicy.core;
import :quoting;

namespace connpolicy {
namespace {

using detail::quoted;

constexpr std::size_t max_name = 253;  // RFC 1035, without the final dot
constexpr std::size_t max_label = 63;
constexpr std::size_t max_text = max_name + 1 + 1 + 5 + 2;  // name, final dot, ':', port, brackets

unexpected<NetError> invalid(std::string_view text, const std::string& why) {
  return unexpected(
      NetError(Step::parse, LibraryError::invalid_endpoint, "cannot read " + quoted(text) + " as host:port: " + why));
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_name_char(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

// Empty when `host` has the shape of a DNS name; else what is wrong with it.
std::string name_problem(std::string_view host) {
  if (host.empty()) return "missing host before ':'";
  std::string_view name = host;
  if (name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return "a host name of a lone '.'";
  if (name.size() > max_name)
    return "the host name is " + std::to_string(name.size()) + " characters long, more than DNS allows (253)";
  for (std::size_t start = 0; start <= name.size();) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty()) return "an empty label (two dots in a row, or a leading dot) in " + quoted(host);
    if (label.size() > max_label) return "the label " + quoted(label) + " is longer than 63 characters";
    if (auto bad = std::ranges::find_if_not(label, is_name_char); bad != label.end())
      return quoted(std::string_view(&*bad, 1)) + " cannot be part of a host name";
    if (label.front() == '-' || label.back() == '-') return "the label " + quoted(label) + " starts or ends with '-'";
    start = dot + 1;
  }
  return {};
}

}  // namespace

expected<HostPort, NetError> HostPort::parse(std::string_view text) {
  if (text.empty()) return invalid(text, "it is empty; write host:port, e.g. login.example.com:7000 or [::1]:7000");
  if (text.size() > max_text)
    return invalid(text, "it is " + std::to_string(text.size()) + " characters long, more than any host:port");
  if (std::ranges::any_of(
          text, [](char c) { return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f; }))
    return invalid(text, "it contains a space, a control or a non-ASCII character");
  const bool numeric_v4 =
      std::ranges::all_of(text.substr(0, text.find(':')), [](char c) { return is_digit(c) || c == '.'; });
  if (text.front() == '[' || (numeric_v4 && text.find(':') != 0)) {  // a numeric address: Endpoint's rules
    auto e = Endpoint::parse(text);
    if (!e) return unexpected(std::move(e).error());
    return HostPort(*e);
  }
  const auto colons = std::ranges::count(text, ':');
  if (colons == 0) return invalid(text, "missing ':port'");
  if (colons > 1) return invalid(text, "an IPv6 address needs brackets, e.g. [::1]:7000");
  const std::size_t colon = text.find(':');
  const std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  if (port_text.empty()) return invalid(text, "missing port number after ':'");
  if (!std::ranges::all_of(port_text, is_digit))
    return invalid(text, "port " + quoted(port_text) + " is not a decimal number");
  unsigned long port = 0;
  for (char c : port_text) port = std::min(port * 10 + static_cast<unsigned long>(c - '0'), 100000ul);
  if (port > 65535) return invalid(text, "port " + std::string(port_text) + " is out of range (0-65535)");
  if (std::string why = name_problem(host); !why.empty()) return invalid(text, why);
  return HostPort(std::string(host), static_cast<std::uint16_t>(port));
}

expected<HostPort, NetError> HostPort::from(std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  const std::string port_text = std::to_string(port);
  return parse(v6 ? "[" + std::string(host) + "]:" + port_text : std::string(host) + ":" + port_text);
}

std::string HostPort::to_string() const {
  if (numeric_) return numeric_->to_string();
  return host_ + ":" + std::to_string(port_);
}

}  // namespace connpolicy
