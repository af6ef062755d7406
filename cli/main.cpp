// connpolicy: for the person whose client just got 10048 / EADDRINUSE / EADDRNOTAVAIL.
//   doctor  this host's ports, TIME_WAITs and sysctls, and what to do about them
//   probe   connect with the policies named on the command line, attempt by attempt
//   census  every socket on a range of local ports, or on given connections
// Exit codes: 0 healthy / all connected, 1 findings / a failed connect / no census, 2 bad usage,
// 3 the report could not be written (stdout full or broken).
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
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

// Every line the command writes to stderr is one line: control characters in what the user gave
// (a value with a newline, from a script) are written escaped, as the library's messages do.
std::string one_line(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (u < 0x20 || u == 0x7f)
      out += std::string("\\x") + hex[u >> 4] + hex[u & 0xf];
    else
      out += c;
  }
  return out;
}

void say(std::string_view text) { std::cerr << "connpolicy: " << one_line(text) << "\n"; }

// An option given with an empty value ("--range ''", as a script with an unset variable writes
// it) is bad usage, never taken for "not given".
void refuse_empty(const CLI::Option* option, const std::string& value) {
  if (option->count() > 0 && value.empty())
    throw Usage{option->get_name() +
                ": an empty value (an unset variable in a script?); give one, or leave the option out"};
}

std::optional<PortRange> range_option(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto range = PortRange::parse(text);
  if (!range) throw Usage{"--range: " + range.error().message()};
  return *range;
}

// --to ADDR:PORT, or NAME:PORT looked up, both families at once within `limit` (the first IPv4
// address is the one asked about, else the first IPv6 one). Text that is not HOST:PORT at all is
// bad usage.
std::expected<Endpoint, std::string> resolve_to(const std::string& text, std::chrono::milliseconds limit) {
  auto name = connpolicy::HostPort::parse(text);
  if (!name) throw Usage{"--to: " + name.error().message()};
  if (name->numeric()) return *name->numeric();
  auto lookups = connpolicy::SystemResolver().resolve_both(*name, limit, {});
  std::optional<Endpoint> v6;
  std::string why = "no address";
  const auto until = std::chrono::steady_clock::now() + limit + std::chrono::milliseconds(100);
  for (int answers = 0; answers < 2; ++answers) {
    auto answer = lookups.next(until);
    if (!answer) break;  // both lookups are bounded by `limit`: this is only a safety net
    if (!answer->result) {
      why = answer->result.error().message();
    } else if (!answer->result->empty()) {
      if (answer->family == connpolicy::Family::ipv4) return answer->result->front();
      v6 = answer->result->front();
    }
  }
  if (v6) return *v6;
  return std::unexpected(why);
}

int doctor(const std::string& range_text, const std::string& to_text, std::chrono::milliseconds to_limit, bool json,
           bool owners) {
  const auto range = range_option(range_text);
  std::optional<Endpoint> to;
  if (!to_text.empty()) {
    auto e = resolve_to(to_text, to_limit);
    if (!e) {
      say("doctor: --to " + to_text + ": " + e.error());
      return 1;
    }
    to = *e;
  }
  auto census = connpolicy::KernelCensus().survey(PortRange::make(1, 65535).value());
  if (!census) {
    say("doctor: no census of this host's sockets: " + census.error().message());
    return 1;
  }
  const cmd::Diagnosis d =
      cmd::diagnose(cmd::read_host_facts(), *census, range, to,
                    owners ? connpolicy::find_socket_owners(census->uses) : connpolicy::SocketOwners{});
  if (json)
    std::cout << cmd::to_json(d).dump(2) << "\n";
  else
    std::cout << cmd::render_text(d);
  return d.findings.empty() ? 0 : 1;
}

// What `census` was asked to show.
struct CensusAsk {
  std::string range_text, to_text, pid_text;
  std::vector<std::string> states, pairs;
  bool json = false, owners = true;
};

int census(const CensusAsk& ask, std::chrono::milliseconds to_limit) {
  cmd::CensusFilter filter;
  filter.ports = range_option(ask.range_text);
  for (const std::string& text : ask.states) {
    auto state = cmd::parse_state(text);
    if (!state) throw Usage{state.error()};
    filter.states.push_back(*state);
  }
  if (!ask.pid_text.empty()) {
    std::uint32_t pid = 0;
    const char* end = ask.pid_text.data() + ask.pid_text.size();
    if (auto [at, ec] = std::from_chars(ask.pid_text.data(), end, pid); ec != std::errc{} || at != end || pid == 0)
      throw Usage{"--pid '" + ask.pid_text + "' is not a process id (a number from 1)"};
    filter.pid = pid;
  }
  if (!filter.ports && ask.pairs.empty() && filter.states.empty() && ask.to_text.empty() && !filter.pid)
    throw Usage{"census: say what to show: --range, --look-up, --state, --to or --pid (they combine)"};
  std::vector<connpolicy::SocketPair> pairs;
  for (const std::string& text : ask.pairs) {
    auto pair = cmd::parse_pair(text);
    if (!pair) throw Usage{pair.error()};
    pairs.push_back(*pair);
  }
  if (!ask.to_text.empty()) {
    auto to = resolve_to(ask.to_text, to_limit);
    if (!to) {
      say("census: --to " + ask.to_text + ": " + to.error());
      return 1;
    }
    filter.to = *to;
  }
  connpolicy::KernelCensus kernel;
  auto taken =
      !pairs.empty() ? kernel.look_up(pairs) : kernel.survey(filter.ports.value_or(PortRange::make(1, 65535).value()));
  if (!taken) {
    say("census: " + taken.error().message());
    return 1;
  }
  // Owners are found before filtering: --pid needs them, and one pass serves every socket shown.
  const connpolicy::SocketOwners owners =
      ask.owners || filter.pid ? connpolicy::find_socket_owners(taken->uses) : connpolicy::SocketOwners{};
  const connpolicy::Census shown = cmd::filtered(*taken, filter, owners);
  if (ask.json)
    std::cout << cmd::census_json(shown, filter, pairs.size(), owners).dump(2) << "\n";
  else
    std::cout << cmd::census_text(shown, filter, pairs.size(), owners);
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

// The report reached stdout, or the command says it did not (exit 3): a script must never take a
// lost report for "healthy". A closed pipe ends the command by SIGPIPE, quietly, as for any tool.
int reported(int exit_code) {
  errno = 0;
  std::cout.flush();
  if (std::cout) return exit_code;
  say(std::string("could not write the report to stdout") + (errno ? ": " + std::string(std::strerror(errno)) : ""));
  return 3;
}

// The command line: what each subcommand takes, and the values given.
struct CommandLine {
  CLI::App app{"connpolicy: who holds my port, and what should I do about it", "connpolicy"};
  std::string range_text, to_text, close = "normal", timeout = "10s", lookup_timeout = "2s";
  bool json = false, no_owners = false;
  CensusAsk ask;
  cmd::ProbeArgs args;
  CLI::App *doctor = nullptr, *probe = nullptr, *census = nullptr;
  std::vector<std::pair<CLI::Option*, const std::string*>> texts;  // options whose empty value is bad usage

  CommandLine() {
    app.require_subcommand(1);
    app.footer("Examples:\n"
               "  connpolicy doctor --range 40000-40009 --to 127.0.0.1:7000\n"
               "  connpolicy probe 127.0.0.1:7000 --bind fixed:40000 --count 2      # the 10048 bug\n"
               "  connpolicy probe 127.0.0.1:7000 --bind rotation:40000-40009 --count 2 --retry expo:10ms,1s,5\n"
               "  connpolicy census --range 40000-40009 --json\n"
               "  connpolicy census --state time-wait --to 127.0.0.1:7000\n"
               "Exit codes: 0 healthy, 1 findings or a failed connect, 2 bad usage, 3 the report could not be "
               "written. JSON: docs/command.md.");
    doctor = app.add_subcommand("doctor", "this host's ephemeral ports, TIME_WAITs and sysctls; findings");
    text(doctor->add_option("--range", range_text, "ports your client binds, e.g. 40000-40009"), range_text);
    text(doctor->add_option("--to", to_text, "the server it connects to, ADDR:PORT or NAME:PORT"), to_text);
    text(doctor->add_option("--timeout", lookup_timeout, "how long --to NAME's lookup may take (default 2s)"),
         lookup_timeout);
    doctor->add_flag("--json", json, "JSON (docs/command.md)");
    doctor->add_flag("--no-owners", no_owners, "do not look for the processes that hold sockets (one pass over /proc)");

    probe = app.add_subcommand("probe", "connect with the policies named here, printing each attempt");
    probe->add_option("target", args.target, "HOST:PORT, [V6]:PORT or NAME:PORT")->required();
    text(probe->add_option("--bind", args.bind_text, "none | ephemeral | fixed:PORT | rotation:A-B | pool:ADDR,..."),
         args.bind_text);
    text(probe->add_option("--retry", args.retry_text, "none | fixed:DELAY,N | expo:INITIAL,MAX,N (10ms, 2s)"),
         args.retry_text);
    probe->add_option("--count", args.count, "connects, one after the other (default 1)");
    probe->add_option("--close", close, "normal (TIME_WAIT on this side) | reset (RST, none)");
    probe->add_option("--timeout", timeout, "per-attempt connect timeout (default 10s)");
    probe->add_flag("--json", args.json, "JSON (docs/command.md)");

    census = app.add_subcommand("census", "sockets by local port, state, remote end or process; who holds each");
    text(census->add_option("--range", ask.range_text, "local ports, e.g. 40000-40009"), ask.range_text);
    census->add_option("--look-up", ask.pairs, "LOCAL,REMOTE of a connection (repeatable)");
    census->add_option("--state", ask.states, "time-wait, established, listen, ... (repeatable: any of them)");
    text(census->add_option("--to", ask.to_text, "the remote end, ADDR:PORT or NAME:PORT"), ask.to_text);
    text(census->add_option("--pid", ask.pid_text, "the process that holds the socket"), ask.pid_text);
    text(census->add_option("--timeout", lookup_timeout, "how long --to NAME's lookup may take (default 2s)"),
         lookup_timeout);
    census->add_flag("--json", ask.json, "JSON (docs/command.md)");
    census->add_flag("--no-owners", no_owners, "do not look for the processes that hold sockets (one pass over /proc)");
  }
  void text(CLI::Option* option, const std::string& value) { texts.emplace_back(option, &value); }

  int run(int argc, char** argv) {
    // CLI11 says only "a subcommand is required" for a word it does not know: name the word.
    const std::string_view word = argc > 1 ? argv[1] : "";
    if (!word.empty() && word[0] != '-' && word != "doctor" && word != "probe" && word != "census")
      throw Usage{"unknown subcommand '" + std::string(word) + "': give doctor, probe or census"};
    app.parse(argc, argv);
    for (const auto& [option, value] : texts) refuse_empty(option, *value);
    if (*probe) return reported(::probe(args, close, timeout));
    const auto limit = cmd::parse_duration(lookup_timeout);
    if (!limit || *limit <= std::chrono::milliseconds(0))
      throw Usage{"--timeout: " + (limit ? "must be more than 0" : limit.error())};
    if (*doctor) return reported(::doctor(range_text, to_text, *limit, json, !no_owners));
    ask.owners = !no_owners;
    return reported(::census(ask, *limit));
  }
};

}  // namespace

int main(int argc, char** argv) {
  CommandLine line;
  try {
    return line.run(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return line.app.exit(e);
  } catch (const CLI::ParseError& e) {
    say(std::string(e.what()) + " (connpolicy --help)");
    return 2;
  } catch (const Usage& e) {
    say(e.text + " (connpolicy --help)");
    return 2;
  }
}
