// How text a user gave appears inside a message: quoted, cut short, control bytes escaped, so a
// message never carries more than a line of what it was given. Internal to connpolicy.core.
module;
#include <string>
#include <string_view>
export module connpolicy.core:quoting;

namespace connpolicy::detail {

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

}  // namespace connpolicy::detail
