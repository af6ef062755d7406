module;
#include <algorithm>
#include <string>
#include <string_view>
module connpolicy.core;

namespace connpolicy {
namespace {
unexpected<NetError> invalid_range(std::string why) {
  return unexpected(NetError(Step::bind, LibraryError::invalid_port_range, std::move(why)));
}
}  // namespace

expected<PortRange, NetError> PortRange::make(long first, long last) {
  if (!is_port_number(first) || !is_port_number(last))
    return invalid_range("port range " + std::to_string(first) + "-" + std::to_string(last) +
                         ": ports are 1-65535 (0 means \"any port\" and cannot be rotated)");
  if (first > last)
    return invalid_range("port range " + std::to_string(first) + "-" + std::to_string(last) +
                         ": the first port is greater than the last");
  return PortRange(Checked{}, static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last));
}

expected<PortRange, NetError> PortRange::parse(std::string_view text) {
  auto number = [](std::string_view s) -> long {
    if (s.empty() || s.size() > 5 || !std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; })) return -1;
    long v = 0;
    for (char c : s) v = v * 10 + (c - '0');
    return v;
  };
  std::string shown(text.substr(0, 32));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  const std::size_t dash = text.find('-');
  const std::string_view first = text.substr(0, dash);
  const std::string_view last = dash == std::string_view::npos ? first : text.substr(dash + 1);
  const long f = number(first), l = number(last);
  if (f < 0 || l < 0)
    return invalid_range("cannot read \"" + shown +
                         "\" as a port range: write FIRST-LAST, e.g. 40000-40009, or one port");
  return make(f, l);
}

std::string PortRange::to_string() const {
  return first_ == last_ ? std::to_string(first_) : std::to_string(first_) + "-" + std::to_string(last_);
}

}  // namespace connpolicy
