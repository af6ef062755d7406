// `connpolicy probe`: a Connector whose policies are chosen on the command line. The policies are
// compile-time types; a std::variant holds the one chosen and std::visit instantiates the
// Connector for it, so the probe runs exactly the code an application with those types runs.
#pragma once
#include <chrono>
#include <expected>
#include <iosfwd>
#include <string>
#include <string_view>
#include <variant>
#include <nlohmann/json.hpp>
import connpolicy;

namespace connpolicy::command {

using BindChoice = std::variant<NoBind, EphemeralBind, FixedPort, FixedPortRotation, SourceAddressPool>;
using RetryChoice = std::variant<NoRetry, FixedDelayRetry, ExponentialRetry>;

struct ProbeArgs {
  std::string target;  // HOST:PORT, [V6]:PORT or a name
  std::string bind_text = "none", retry_text = "none";
  int count = 1;
  bool reset = false;  // --close reset: RST, no TIME_WAIT
  std::chrono::milliseconds timeout{10000};
  bool json = false;
};

// The words of --bind, --retry and durations ("10ms", "2s", "250" = ms). Errors are one line,
// meant to follow "connpolicy: ".
std::expected<BindChoice, std::string> parse_bind(std::string_view text);
std::expected<RetryChoice, std::string> parse_retry(std::string_view text);
std::expected<std::chrono::milliseconds, std::string> parse_duration(std::string_view text);

// What one probe run did, for the summary and the JSON.
struct ProbeTotals {
  int connects = 0, made = 0, failed = 0, attempts = 0, binds = 0, waits = 0;
  double ms = 0;
};

// Runs args.count connects one after the other. Attempts are written to `out` as they happen
// (text mode, up to 20 connects; more: failures only, and a progress line on `progress` every
// tenth of the run). Returns the JSON document (printed by the caller in --json mode).
nlohmann::json run_probe(const ProbeArgs& args, const BindChoice& bind, const RetryChoice& retry, std::ostream& out,
                         std::ostream& progress, ProbeTotals& totals);

}  // namespace connpolicy::command
