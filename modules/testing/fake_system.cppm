// FakeSystem: the OS, scripted. Put it where a SystemApi goes (a BasicSocket, find_free_port,
// PortReservation, and the Connector) to make any call fail with any error code, in any order,
// without a network, and to check afterwards what was called and that every handle was closed.
//
//     connpolicy::FakeSystem sys;
//     sys.script(connpolicy::Call::bind, {connpolicy::make_system_error(EADDRINUSE),
//                                         connpolicy::make_system_error(EADDRINUSE), {}});
//     ... run the code under test with `sys` ...
//     REQUIRE(sys.count(connpolicy::Call::bind) == 3);
//     REQUIRE(sys.open_handles() == 0);
//
// Use when: unit tests of your own policies or of code that connects, on any platform, replaying
// Linux errno or Windows Winsock codes (make_winsock_error(10048)).
module;
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>
export module connpolicy.testing:fake_system;
import connpolicy.core;
import :manual_timer;

export namespace connpolicy {

enum class Call : std::uint8_t {
  open_socket,
  set_option,
  set_nonblocking,
  bind,
  connect,
  wait_writable,
  pending_error,
  local_endpoint,
  remote_endpoint,
  close,
  wait_any_writable,
};
std::string_view to_string(Call call) noexcept;

// One call as the fake saw it.
struct CallRecord {
  Call call;
  native_handle_type handle = invalid_handle;  // for open_socket: the handle it gave (or invalid)
  std::optional<Endpoint> endpoint;            // bind, connect: the address passed
  std::optional<SocketOption> option;          // set_option
  int value = 0;                               // set_option's value; open_socket / set_nonblocking: 1 = non-blocking;
                                               // wait_any_writable: how many handles
  std::error_code result;                      // what the call reported (empty = success)
  Timer::time_point time{};                    // when, on the routes' clock (route()); else zero
};

// How connects to one remote go, in time (FakeSystem::route).
struct FakeRoute {
  std::optional<std::chrono::milliseconds> after;  // the connect finishes this long after connect();
                                                   // empty: never (a black hole: only a timeout ends it)
  std::error_code outcome;                         // empty: connected; else why not (ECONNREFUSED)
};

class FakeSystem {
 public:
  static constexpr native_handle_type first_handle = 100;
  static constexpr std::uint16_t first_ephemeral_port = 49152;

  FakeSystem();

  // --- scripting: results queue up per call kind and are used in order. An empty error_code
  // means "succeed". Once a queue is empty the call behaves plainly:
  //   open_socket  a fresh handle (100, 101, ...)
  //   bind         succeeds; port 0 gets the next ephemeral port (49152, 49153, ...)
  //   connect      succeeds at once (script EINPROGRESS to make it pending; then wait_writable
  //                and pending_error decide)
  //   wait_writable ready;  pending_error: no error (connected)
  //   close        succeeds; the handle is closed even when an error is scripted (as in POSIX)
  // pending_error's scripted code is the connect's outcome (e.g. ECONNREFUSED), not a failure of
  // the call itself.
  FakeSystem& script(Call call, std::initializer_list<std::error_code> results);
  FakeSystem& fail(Call call, std::error_code error, int times = 1);
  FakeSystem& fail(Call call, std::errc error, int times = 1);
  // The next `times` wait_writable calls time out (return false).
  FakeSystem& time_out(int times = 1);

  // Connects to `remote` (not scripted otherwise) stay in progress and finish as `route` says, on
  // `clock`: wait_writable and wait_any_writable move `clock` to the first that finishes, or by
  // their whole timeout. For exact schedules of races and timeouts, with no real time passing.
  FakeSystem& route(const Endpoint& remote, FakeRoute route, ManualTimer& clock);

  // --- what happened
  std::vector<CallRecord> calls() const;
  std::size_t count(Call call) const;
  int opened() const;        // handles given out
  int closed() const;        // handles closed
  int open_handles() const;  // given out and not closed: 0 after code that leaks nothing
  int bad_closes() const;    // close() of a handle that was not open (a double close)
  // Last value set for `option` on `handle`, if any.
  std::optional<int> option_value(native_handle_type handle, SocketOption option) const;

  // --- the SystemApi
  expected<native_handle_type, std::error_code> open_socket(Family family, bool nonblocking);
  std::error_code set_option(native_handle_type h, SocketOption option, int value);
  std::error_code set_nonblocking(native_handle_type h, bool on);
  std::error_code bind(native_handle_type h, const Endpoint& local);
  std::error_code connect(native_handle_type h, const Endpoint& remote);
  expected<bool, std::error_code> wait_writable(native_handle_type h, std::chrono::milliseconds timeout);
  std::error_code pending_error(native_handle_type h);
  // Index of the first handle to finish (routed ones by their time; others are ready at once).
  expected<std::optional<std::size_t>, std::error_code> wait_any_writable(std::span<const native_handle_type> handles,
                                                                          std::chrono::milliseconds timeout);
  expected<Endpoint, std::error_code> local_endpoint(native_handle_type h);
  expected<Endpoint, std::error_code> remote_endpoint(native_handle_type h);
  std::error_code close(native_handle_type h);

 private:
  struct State;
  std::shared_ptr<State> state_;  // copies share it: the test keeps one, the code under test another
};

}  // namespace connpolicy
