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

using detail::is_digit;
bool is_name_char(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

bool is_hex_digit(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A number as inet_aton reads one: decimal, octal (a leading 0) or hexadecimal (0x...).
bool is_c_number(std::string_view label) noexcept {
  if (label.size() >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X'))
    return std::ranges::all_of(label.substr(2), is_hex_digit);
  return !label.empty() && std::ranges::all_of(label, is_digit);
}

// True when glibc's getaddrinfo would read `name` as an IPv4 address without asking a name
// server: one to four numbers joined by dots ("0x7f.0.0.1", "0x7f000001", "017700000001", "127.1").
bool reads_as_ipv4_number(std::string_view name) {
  int numbers = 0;
  for (std::size_t start = 0; start <= name.size(); ++numbers) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    if (!is_c_number(name.substr(start, dot - start))) return false;
    start = dot + 1;
  }
  return numbers <= 4;
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
  // A name that is a number in disguise would bypass a caller's check of numeric(): refused.
  if (reads_as_ipv4_number(name))
    return quoted(host) +
           " reads as a number, which getaddrinfo takes for an IPv4 address without asking a name server; write "
           "the address as four decimal numbers, e.g. 127.0.0.1";
  const std::string_view last = name.substr(name.rfind('.') == std::string_view::npos ? 0 : name.rfind('.') + 1);
  if (std::ranges::all_of(last, is_digit))
    return "the last label " + quoted(last) + " is all digits, which no host name's is (RFC 1123)";
  return {};
}

// Port 0 means "any port" when binding; no server listens on it.
constexpr std::string_view port_0_problem =
    "port 0 is not a destination (it means \"any port\" when binding); give the port the server listens on";

}  // namespace

expected<HostPort, NetError> HostPort::parse(std::string_view text) {
  if (std::string why =
          detail::screen_problem(text, max_text, "host:port, e.g. login.example.com:7000 or [::1]:7000", "host:port");
      !why.empty())
    return invalid(text, why);
  const bool numeric_v4 =
      std::ranges::all_of(text.substr(0, text.find(':')), [](char c) { return is_digit(c) || c == '.'; });
  if (text.front() == '[' || (numeric_v4 && text.find(':') != 0)) {  // a numeric address: Endpoint's rules
    auto e = Endpoint::parse(text);
    if (!e) return unexpected(std::move(e).error());
    if (e->port() == 0) return invalid(text, std::string(port_0_problem));
    return HostPort(*e);
  }
  const auto colons = std::ranges::count(text, ':');
  if (colons == 0) return invalid(text, "missing ':port'");
  if (colons > 1) return invalid(text, "an IPv6 address needs brackets, e.g. [::1]:7000");
  const std::size_t colon = text.find(':');
  const std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  const auto [port, port_problem] = detail::read_port(port_text);
  if (!port_problem.empty()) return invalid(text, port_problem);
  if (std::string why = name_problem(host); !why.empty()) return invalid(text, why);
  if (port == 0) return invalid(text, std::string(port_0_problem));
  return HostPort(std::string(host), port);
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
