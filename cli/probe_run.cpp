// Runs the probe: one Connector per (bind, retry) pair the variants can hold, chosen by std::visit.
#include <memory>
#include <ostream>

#include "probe.hpp"

namespace connpolicy::command {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string condition_text(Errc condition) { return make_error_condition(condition).message(); }

// What the observer saw, shared by the observer's copies (the Connector keeps one).
struct ProbeLog {
  std::ostream* out = nullptr;      // nullptr: do not print attempts
  Clock::time_point connect_start;  // attempts' times are said from here (the system Timer's clock)
  nlohmann::json attempts = nlohmann::json::array();
  nlohmann::json before_attempts = nlohmann::json::array();  // rounds that failed before any syscall
  int binds = 0, waits = 0;
};

long long microseconds(Clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }

// A failure's fields (JSON), and its text: "bind: Address already in use  => retry in 10 ms".
void describe_failure(const AttemptEvent& e, nlohmann::json& j, std::string& text) {
  const auto delay_ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count();
  j["step"] = std::string(to_string(e.step));
  j["error"] = e.error.message();
  j["condition"] = condition_text(e.condition);
  j["action"] = e.action ? nlohmann::json(std::string(to_string(*e.action))) : nlohmann::json(nullptr);
  j["delay_ms"] = delay_ms;
  if (e.action) text += "  => " + std::string(to_string(*e.action));
  if (e.action == Action::retry) text += " in " + std::to_string(delay_ms) + " ms";
}

struct AttemptPrinter {
  std::shared_ptr<ProbeLog> log;
  void operator()(const AttemptEvent& e) const {
    if (e.action == Action::retry) ++log->waits;
    // A round that made no syscall (the lookup failed, or the bind policy had nothing to lend) is
    // said as what it is, never as an attempt: it is not counted among the attempts.
    if (!e.attempted) {
      const std::string what = e.step == Step::resolve && e.name ? e.name->to_string() : e.remote.to_string();
      nlohmann::json j = {{"target", what}};
      std::string tail;
      describe_failure(e, j, tail);
      if (log->out)
        *log->out << "  no attempt: " << to_string(e.step) << " " << what << ": " << condition_text(e.condition) << tail
                  << "\n";
      log->before_attempts.push_back(std::move(j));
      return;
    }
    const std::string local = e.local ? e.local->to_string() : std::string("(kernel's choice)");
    if (e.local) ++log->binds;
    const long long started_us = microseconds(e.started - log->connect_start), took_us = microseconds(e.took);
    nlohmann::json j = {
        {"attempt", e.attempt},           {"local", e.local ? nlohmann::json(local) : nlohmann::json(nullptr)},
        {"remote", e.remote.to_string()}, {"connected", e.connected()},
        {"started_us", started_us},       {"took_us", took_us}};
    std::string outcome = "connected";
    if (e.abandoned) {  // a race's loser, or in flight when the connect ended: no answer of its own
      outcome = "closed unfinished (another address won, or the connect ended)";
      j["abandoned"] = true;
    } else if (!e.connected()) {
      outcome = std::string(to_string(e.step)) + ": " + e.error.message();
      describe_failure(e, j, outcome);
    }
    if (log->out)
      *log->out << "  attempt " << e.attempt << "  " << local << " -> " << e.remote.to_string() << "  " << outcome
                << "  (at " << started_us << " us, took " << took_us << " us)\n";
    log->attempts.push_back(std::move(j));
  }
};

template <class Bind, class Retry>
nlohmann::json probe_with(const ProbeArgs& args, const HostPort& target, Bind bind, Retry retry, std::ostream& out,
                          std::ostream& progress, ProbeTotals& totals) {
  const bool quiet = args.json || args.count > 20;  // attempts printed only for short text runs
  auto log = std::make_shared<ProbeLog>();
  log->out = quiet ? nullptr : &out;
  Connector<Bind, Retry, DefaultErrorPolicy, NativeSystem, AttemptPrinter> client(
      {.bind = std::move(bind),
       .retry = std::move(retry),
       .options = {.connect_timeout = args.timeout},
       .observer = AttemptPrinter{log}});
  nlohmann::json connects = nlohmann::json::array();
  const auto run_start = Clock::now();
  const int tenth = std::max(1, args.count / 10);
  for (int n = 1; n <= args.count; ++n) {
    log->attempts = nlohmann::json::array();
    log->before_attempts = nlohmann::json::array();
    const auto start = Clock::now();
    log->connect_start = start;
    auto socket = client.connect(target);
    const double ms = ms_since(start);
    nlohmann::json c = {{"connect", n}, {"connected", socket.has_value()}, {"ms", ms}};
    if (socket) {
      ++totals.made;
      const auto local = socket->local_endpoint();
      c["local"] = local ? nlohmann::json(local->to_string()) : nlohmann::json(nullptr);
      if (!args.json && !quiet)
        out << "connect " << n << ": connected from " << c["local"].get<std::string>() << " in "
            << static_cast<long>(ms) << " ms\n";
      args.reset ? socket->close_reset() : socket->close();
    } else {
      ++totals.failed;
      const NetError& e = socket.error();
      c["error"] = {{"message", e.message()},
                    {"step", std::string(to_string(e.step()))},
                    {"condition", condition_text(e.condition())},
                    {"code", e.code().value()}};
      if (!args.json)
        out << "connect " << n << ": FAILED (" << condition_text(e.condition()) << ") after " << static_cast<long>(ms)
            << " ms: " << e.message() << "\n";
    }
    totals.attempts += static_cast<int>(log->attempts.size());
    if (args.json) {  // text mode printed what it shows already: memory stays flat however long the run
      c["attempts"] = std::move(log->attempts);
      if (!log->before_attempts.empty()) c["before_attempts"] = std::move(log->before_attempts);
      connects.push_back(std::move(c));
    }
    if (args.count > 20 && n % tenth == 0)
      progress << "probe: " << n << " of " << args.count << " connects, " << totals.made << " made, " << totals.failed
               << " failed\n"
               << std::flush;
  }
  totals.connects = args.count;
  totals.binds = log->binds;
  totals.waits = log->waits;
  totals.ms = ms_since(run_start);
  return connects;
}

}  // namespace

nlohmann::json run_probe(const ProbeArgs& args, const BindChoice& bind, const RetryChoice& retry, std::ostream& out,
                         std::ostream& progress, ProbeTotals& totals) {
  nlohmann::json doc = {{"version", 1},
                        {"target", args.target},
                        {"bind", args.bind_text},
                        {"retry", args.retry_text},
                        {"close", args.reset ? "reset" : "normal"}};
  auto target = HostPort::parse(args.target);
  if (!target) {  // the caller checked it already; kept for callers that did not
    doc["error"] = target.error().message();
    return doc;
  }
  doc["connects"] =
      std::visit([&](const auto& b, const auto& r) { return probe_with(args, *target, b, r, out, progress, totals); },
                 bind, retry);
  doc["summary"] = {
      {"connects", totals.connects}, {"made", totals.made},   {"failed", totals.failed}, {"attempts", totals.attempts},
      {"binds", totals.binds},       {"waits", totals.waits}, {"ms", totals.ms}};
  if (!args.json)
    out << "probe: " << totals.connects << " connects: " << totals.made << " made, " << totals.failed << " failed; "
        << totals.attempts << " attempts, " << totals.binds << " binds, " << totals.waits << " waits, "
        << static_cast<long>(totals.ms) << " ms\n";
  return doc;
}

}  // namespace connpolicy::command
