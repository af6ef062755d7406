// connpolicy: for the person whose client just got 10048 / EADDRINUSE / EADDRNOTAVAIL.
//   doctor  this host's ports, TIME_WAITs and sysctls, and what to do about them
//   probe   connect with the policies named on the command line, attempt by attempt
//   census  every socket on a range of local ports, or on given connections
// Exit codes: 0 healthy / all connected, 1 findings / a failed connect / no census, 2 bad usage.
#include <iostream>
#include <optional>
#include <string>
#include <vector>
#include <CLI/CLI.hpp>

#include "census_view.hpp"
#include "doctor.hpp"
#include "host_facts.hpp"
#include "probe.hpp"

namespace cmd = connpolicy::command;
using connpolicy::Endpoint;
using connpolicy::PortRange;

namespace {

struct Usage {  // bad usage: one line on stderr, exit 2
  std::string text;
};

std::optional<PortRange> range_option(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto range = PortRange::parse(text);
  if (!range) throw Usage{"--range: " + range.error().message()};
  return *range;
}

// --to ADDR:PORT, or NAME:PORT looked up (IPv4 first, then IPv6; the first address is the one
// asked about). Text that is not HOST:PORT at all is bad usage.
std::expected<Endpoint, std::string> resolve_to(const std::string& text) {
  auto name = connpolicy::HostPort::parse(text);
  if (!name) throw Usage{"--to: " + name.error().message()};
  if (name->numeric()) return *name->numeric();
  connpolicy::SystemResolver resolver;
  std::string why = "no address";
  for (const auto family : {connpolicy::Family::ipv4, connpolicy::Family::ipv6}) {
    auto found = resolver.resolve(*name, family, std::chrono::seconds(5), {});
    if (found && !found->empty()) return found->front();
    if (!found) why = found.error().message();
  }
  return std::unexpected(why);
}

int doctor(const std::string& range_text, const std::string& to_text, bool json) {
  const auto range = range_option(range_text);
  std::optional<Endpoint> to;
  if (!to_text.empty()) {
    auto e = resolve_to(to_text);
    if (!e) {
      std::cerr << "connpolicy: doctor: --to " << to_text << ": " << e.error() << "\n";
      return 1;
    }
    to = *e;
  }
  auto census = connpolicy::KernelCensus().survey(PortRange::make(1, 65535).value());
  if (!census) {
    std::cerr << "connpolicy: doctor: no census of this host's sockets: " << census.error().message() << "\n";
    return 1;
  }
  const cmd::Diagnosis d = cmd::diagnose(cmd::read_host_facts(), *census, range, to);
  if (json)
    std::cout << cmd::to_json(d).dump(2) << "\n";
  else
    std::cout << cmd::render_text(d);
  return d.findings.empty() ? 0 : 1;
}

int census(const std::string& range_text, const std::vector<std::string>& pairs_text, bool json) {
  const auto range = range_option(range_text);
  if (range.has_value() == !pairs_text.empty()) throw Usage{"census: give --range or --look-up (one of them)"};
  std::vector<connpolicy::SocketPair> pairs;
  for (const std::string& text : pairs_text) {
    auto pair = cmd::parse_pair(text);
    if (!pair) throw Usage{pair.error()};
    pairs.push_back(*pair);
  }
  connpolicy::KernelCensus kernel;
  auto taken = range ? kernel.survey(*range) : kernel.look_up(pairs);
  if (!taken) {
    std::cerr << "connpolicy: census: " << taken.error().message() << "\n";
    return 1;
  }
  if (json)
    std::cout << cmd::census_json(*taken, range, pairs.size()).dump(2) << "\n";
  else
    std::cout << cmd::census_text(*taken, range, pairs.size());
  return 0;
}

int probe(cmd::ProbeArgs args, const std::string& close, const std::string& timeout) {
  if (auto target = connpolicy::HostPort::parse(args.target); !target)
    throw Usage{"probe: " + target.error().message()};
  auto bind = cmd::parse_bind(args.bind_text);
  auto retry = cmd::parse_retry(args.retry_text);
  auto time = cmd::parse_duration(timeout);
  if (!bind) throw Usage{bind.error()};
  if (!retry) throw Usage{retry.error()};
  if (!time || *time <= std::chrono::milliseconds(0))
    throw Usage{"--timeout: " + (time ? "must be more than 0" : time.error())};
  if (close != "normal" && close != "reset") throw Usage{"--close '" + close + "' is not normal or reset"};
  if (args.count < 1 || args.count > 100000) throw Usage{"--count must be 1 to 100000"};
  args.reset = close == "reset";
  args.timeout = *time;
  cmd::ProbeTotals totals;
  const auto doc = cmd::run_probe(args, *bind, *retry, std::cout, std::cerr, totals);
  if (args.json) std::cout << doc.dump(2) << "\n";
  return totals.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"connpolicy: who holds my port, and what should I do about it"};
  app.require_subcommand(1);
  app.footer("Examples:\n"
             "  connpolicy doctor --range 40000-40009 --to 127.0.0.1:7000\n"
             "  connpolicy probe 127.0.0.1:7000 --bind fixed:40000 --count 2      # the 10048 bug\n"
             "  connpolicy probe 127.0.0.1:7000 --bind rotation:40000-40009 --count 2 --retry expo:10ms,1s,5\n"
             "  connpolicy census --range 40000-40009 --json\n"
             "Exit codes: 0 healthy, 1 findings or a failed connect, 2 bad usage. JSON: docs/command.md.");
  std::string range_text, to_text, close = "normal", timeout = "10s";
  std::vector<std::string> pairs;
  bool json = false;
  cmd::ProbeArgs args;

  auto* doctor_cmd = app.add_subcommand("doctor", "this host's ephemeral ports, TIME_WAITs and sysctls; findings");
  doctor_cmd->add_option("--range", range_text, "ports your client binds, e.g. 40000-40009");
  doctor_cmd->add_option("--to", to_text, "the server it connects to, ADDR:PORT");
  doctor_cmd->add_flag("--json", json, "JSON (docs/command.md)");

  auto* probe_cmd = app.add_subcommand("probe", "connect with the policies named here, printing each attempt");
  probe_cmd->add_option("target", args.target, "HOST:PORT, [V6]:PORT or NAME:PORT")->required();
  probe_cmd->add_option("--bind", args.bind_text, "none | ephemeral | fixed:PORT | rotation:A-B | pool:ADDR,...");
  probe_cmd->add_option("--retry", args.retry_text, "none | fixed:DELAY,N | expo:INITIAL,MAX,N (10ms, 2s)");
  probe_cmd->add_option("--count", args.count, "connects, one after the other (default 1)");
  probe_cmd->add_option("--close", close, "normal (TIME_WAIT on this side) | reset (RST, none)");
  probe_cmd->add_option("--timeout", timeout, "per-attempt connect timeout (default 10s)");
  probe_cmd->add_flag("--json", args.json, "JSON (docs/command.md)");

  auto* census_cmd = app.add_subcommand("census", "every socket on local ports A-B, or on given connections");
  census_cmd->add_option("--range", range_text, "local ports, e.g. 40000-40009");
  census_cmd->add_option("--look-up", pairs, "LOCAL,REMOTE of a connection (repeatable)");
  census_cmd->add_flag("--json", json, "JSON (docs/command.md)");

  try {
    app.parse(argc, argv);
    if (*doctor_cmd) return doctor(range_text, to_text, json);
    if (*probe_cmd) return probe(args, close, timeout);
    return census(range_text, pairs, json);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "connpolicy: " << e.what() << " (connpolicy --help)\n";
    return 2;
  } catch (const Usage& e) {
    std::cerr << "connpolicy: " << e.text << " (connpolicy --help)\n";
    return 2;
  }
}
