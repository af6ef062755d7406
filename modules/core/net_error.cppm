// NetError: what went wrong making a connection, with enough to act on: which step, which local
// and remote address, which OS code, after how many attempts, and a message that says what to try.
module;
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
export module connpolicy.core:net_error;
import :error;
import :endpoint;

export namespace connpolicy {

class NetError {
 public:
  NetError(Step step, std::error_code code) noexcept : code_(code), step_(step) {}
  NetError(Step step, LibraryError error, std::string detail = {})
      : code_(make_error_code(error)), step_(step), detail_(std::move(detail)) {}

  // What the OS (errno, Winsock) or connpolicy (LibraryError) said. Compare with an Errc.
  std::error_code code() const noexcept { return code_; }
  // The portable kind of failure; `error == Errc::x` compares this. Mostly condition_of(code()),
  // refined by the step (the only cases where it differs from `code() == Errc::x`): on Linux
  // ephemeral exhaustion shows as EADDRNOTAVAIL at connect (or EADDRINUSE at bind to port 0),
  // on Windows as 10048 at connect, and all of these are local_ports_exhausted here when the
  // local port was the kernel's choice; with a port of our own (EADDRNOTAVAIL at connect: the
  // address pair is taken) they are local_port_busy.
  Errc condition() const noexcept;
  Step step() const noexcept { return step_; }
  const std::optional<Endpoint>& local_endpoint() const noexcept { return local_; }
  const std::optional<Endpoint>& remote_endpoint() const noexcept { return remote_; }
  // Connection attempts made before giving up (0 when the failure came before any attempt).
  int attempts() const noexcept { return attempts_; }
  // Extra words from where the error was made, e.g. what is wrong with a parsed text.
  const std::string& detail() const noexcept { return detail_; }
  // When whoever made the error knows how long until trying again can work (e.g. a port
  // rotation whose ports are all cooling down): retry policies wait exactly that.
  const std::optional<std::chrono::milliseconds>& retry_after() const noexcept { return retry_after_; }
  // Why the retry policy stopped (empty when it was not asked: the error policy gave up, a stop,
  // a configuration error). code() stays what the last round failed with.
  std::optional<GiveUp> gave_up() const noexcept { return gave_up_; }

  // One line a person can act on, e.g.
  // "bind 0.0.0.0:40003 -> 127.0.0.1:7000: local port busy (EADDRINUSE, errno 98), after 3
  //  attempts; port 40003 may be held by a closed connection in TIME_WAIT ...; use ..."
  std::string message() const;
  // One line for a list of failures: "[::1]:7000 connect: refused (ECONNREFUSED, errno 111)"
  // (the remote, the step, what happened, the detail), without the hint.
  std::string summary() const;

  NetError& with_local(const Endpoint& e) & noexcept {
    local_ = e;
    return *this;
  }
  NetError& with_remote(const Endpoint& e) & noexcept {
    remote_ = e;
    return *this;
  }
  NetError& with_attempts(int n) & noexcept {
    attempts_ = n;
    return *this;
  }
  NetError& with_detail(std::string d) & noexcept {
    detail_ = std::move(d);
    return *this;
  }
  NetError& with_retry_after(std::chrono::milliseconds d) & noexcept {
    retry_after_ = d;
    return *this;
  }
  NetError& with_gave_up(GiveUp reason) & noexcept {
    gave_up_ = reason;
    return *this;
  }
  NetError&& with_local(const Endpoint& e) && noexcept { return std::move(with_local(e)); }
  NetError&& with_remote(const Endpoint& e) && noexcept { return std::move(with_remote(e)); }
  NetError&& with_attempts(int n) && noexcept { return std::move(with_attempts(n)); }
  NetError&& with_detail(std::string d) && noexcept { return std::move(with_detail(std::move(d))); }
  NetError&& with_retry_after(std::chrono::milliseconds d) && noexcept { return std::move(with_retry_after(d)); }

  friend bool operator==(const NetError&, const NetError&) = default;
  // "What kind of failure is this?": `if (error == Errc::local_port_busy)`. Compares condition().
  friend bool operator==(const NetError& error, Errc condition) noexcept { return error.condition() == condition; }

 private:
  std::error_code code_;
  Step step_;
  std::optional<Endpoint> local_;
  std::optional<Endpoint> remote_;
  int attempts_ = 0;
  std::string detail_;
  std::optional<std::chrono::milliseconds> retry_after_;
  std::optional<GiveUp> gave_up_;
};

// `error.gave_up() == GiveUp::retry_budget` works without including <optional> (a module does not
// pass std's operators on to its importers), and beside it when included (this one is preferred).
constexpr bool operator==(const std::optional<GiveUp>& reason, GiveUp r) noexcept { return reason && *reason == r; }

// The error for an option that means nothing, found before any syscall: `option` names it
// ("ConnectorOptions::connect_timeout"), `what` says what is wrong and what would do.
inline NetError invalid_option(std::string_view option, std::string_view what) {
  return NetError(Step::configure, LibraryError::invalid_option, std::string(option) + " " + std::string(what));
}

// Checks shared by every options struct: a duration that must be positive (or not negative), a
// count that must not be negative. Empty when fine.
template <class Rep, class Period>
std::optional<NetError> check_duration(std::string_view option, std::chrono::duration<Rep, Period> d,
                                       bool zero_allowed) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (d < d.zero() || (!zero_allowed && d == d.zero()))
    return invalid_option(option, "is " + std::to_string(ms) + " ms: it must be " +
                                      (zero_allowed ? "0 ms or more" : "more than 0 ms"));
  return std::nullopt;
}
inline std::optional<NetError> check_count(std::string_view option, long long n, std::string_view zero_means) {
  if (n < 0)
    return invalid_option(option,
                          "is " + std::to_string(n) + ": it must be 0 (" + std::string(zero_means) + ") or more");
  return std::nullopt;
}

}  // namespace connpolicy
