#include <charconv>

#include "host_facts.hpp"
#include "probe.hpp"

namespace connpolicy::command {
namespace {

std::expected<long, std::string> number(std::string_view text, std::string_view what) {
  long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
    return std::unexpected(std::string(what) + " '" + std::string(text) + "' is not a number");
  return value;
}

// A source address of a pool: "127.0.0.2", "::1" or "[::1]"; its port is not asked for.
std::expected<Endpoint, std::string> source_address(std::string_view text) {
  std::string with_port = text.find(':') != std::string_view::npos && text.front() != '['
                              ? "[" + std::string(text) + "]:0"
                              : std::string(text) + ":0";
  auto e = Endpoint::parse(with_port);
  if (!e) return std::unexpected("--bind pool: '" + std::string(text) + "' is not an IP address");
  return *e;
}

template <class T>
std::expected<BindChoice, std::string> bind_or_error(expected<T, NetError> made, std::string_view text) {
  if (!made) return std::unexpected("--bind " + std::string(text) + ": " + made.error().message());
  return BindChoice(std::move(*made));
}

// Attempts of a retry policy: 0 (no limit) is refused here, since a probe must end by itself.
std::expected<int, std::string> attempts(std::string_view text) {
  auto n = number(text, "--retry: attempts");
  if (!n) return std::unexpected(n.error());
  if (*n < 1 || *n > 1000) return std::unexpected("--retry: attempts must be 1 to 1000, not " + std::string(text));
  return static_cast<int>(*n);
}

}  // namespace

std::expected<std::chrono::milliseconds, std::string> parse_duration(std::string_view text) {
  long scale = 1;
  if (text.ends_with("ms"))
    text.remove_suffix(2);
  else if (text.ends_with("s"))
    text.remove_suffix(1), scale = 1000;
  auto n = number(text, "duration");
  if (!n) return std::unexpected(n.error());
  if (*n < 0 || *n > 86'400'000 / scale) return std::unexpected("duration '" + std::string(text) + "' is out of range");
  return std::chrono::milliseconds(*n * scale);
}

std::expected<BindChoice, std::string> parse_bind(std::string_view text) {
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view value = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (text == "none") return BindChoice(NoBind{});
  if (text == "ephemeral") return BindChoice(EphemeralBind{});
  if (kind == "fixed" && !value.empty()) {
    auto port = number(value, "--bind fixed: port");
    if (!port) return std::unexpected(port.error());
    return bind_or_error(FixedPort::make(*port), text);
  }
  if (kind == "rotation" && !value.empty()) {
    auto range = PortRange::parse(value);
    if (!range) return std::unexpected("--bind " + std::string(text) + ": " + range.error().message());
    return BindChoice(FixedPortRotation(*range));
  }
  if (kind == "pool" && !value.empty()) {
    std::vector<Endpoint> addresses;
    for (std::string_view part : split(value, ',')) {
      auto address = source_address(part);
      if (!address) return std::unexpected(address.error());
      addresses.push_back(*address);
    }
    return bind_or_error(SourceAddressPool::make(std::move(addresses)), text);
  }
  return std::unexpected("--bind '" + std::string(text) +
                         "' is not one of none, ephemeral, fixed:PORT, rotation:FIRST-LAST, pool:ADDR,...");
}

std::expected<RetryChoice, std::string> parse_retry(std::string_view text) {
  if (text == "none") return RetryChoice(NoRetry{});
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const auto parts =
      colon == std::string_view::npos ? std::vector<std::string_view>{} : split(text.substr(colon + 1), ',');
  const std::string usage = "--retry '" + std::string(text) + "' is not none, fixed:DELAY,N or expo:INITIAL,MAX,N";
  if (kind == "fixed" && parts.size() == 2) {
    auto delay = parse_duration(parts[0]);
    auto n = attempts(parts[1]);
    if (!delay || !n) return std::unexpected(!delay ? delay.error() : n.error());
    auto made = FixedDelayRetry::make({.delay = *delay, .max_attempts = *n});
    if (!made) return std::unexpected("--retry " + std::string(text) + ": " + made.error().message());
    return RetryChoice(std::move(*made));
  }
  if (kind == "expo" && parts.size() == 3) {
    auto initial = parse_duration(parts[0]), most = parse_duration(parts[1]);
    auto n = attempts(parts[2]);
    if (!initial || !most || !n) return std::unexpected(!initial ? initial.error() : !most ? most.error() : n.error());
    auto made = ExponentialRetry::make({.initial = *initial, .max_delay = *most, .max_attempts = *n});
    if (!made) return std::unexpected("--retry " + std::string(text) + ": " + made.error().message());
    return RetryChoice(std::move(*made));
  }
  return std::unexpected(usage);
}

}  // namespace connpolicy::command
