// What the text parsers (Endpoint::parse, HostPort::parse) share: how text a user gave appears
// inside a message, the first screen every such text passes, and the port after the ':'.
// Internal to connpolicy.core.
module;
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
export module connpolicy.core:quoting;

namespace connpolicy::detail {

// Quoted, cut short, control bytes escaped: a message never carries more than a line of what it
// was given.
inline std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (text.size() > 64) out += "...";
  return out + "\"";
}

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool all_digits(std::string_view s) noexcept { return !s.empty() && std::ranges::all_of(s, is_digit); }

// Empty when `text` may be read further; else why not. `example` is what to write instead of
// nothing ("address:port, e.g. 127.0.0.1:80"), `what` the thing it should be ("endpoint").
inline std::string screen_problem(std::string_view text, std::size_t max_size, std::string_view example,
                                  std::string_view what) {
  if (text.empty()) return "it is empty; write " + std::string(example);
  if (text.size() > max_size)
    return "it is " + std::to_string(text.size()) + " characters long, more than any " + std::string(what);
  if (std::ranges::any_of(
          text, [](char c) { return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f; }))
    return "it contains a space, a control or a non-ASCII character";
  return {};
}

// The port after ':' (0-65535), or why it is not one.
struct PortText {
  std::uint16_t port = 0;
  std::string problem;
};
inline PortText read_port(std::string_view port_text) {
  if (port_text.empty()) return {0, "missing port number after ':'"};
  if (!all_digits(port_text)) return {0, "port " + quoted(port_text) + " is not a decimal number"};
  unsigned long value = 0;
  for (char c : port_text) value = std::min(value * 10 + static_cast<unsigned long>(c - '0'), 100000ul);
  if (value > 65535) return {0, "port " + std::string(port_text) + " is out of range (0-65535)"};
  return {static_cast<std::uint16_t>(value), {}};
}

}  // namespace connpolicy::detail
