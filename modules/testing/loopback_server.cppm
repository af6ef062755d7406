// LoopbackServer: a TCP server on 127.0.0.1 for integration tests and demos. It accepts every
// connection on a background thread and, depending on its mode, either reads until the client
// closes and then closes (so TIME_WAIT lands on the client, as in the seed) or closes each
// connection at once (TIME_WAIT on the server). Stops within 10 ms when destroyed.
//
// Use when: a test or demo needs a real peer on loopback and nothing else.
module;
#include <chrono>
#include <cstdint>
#include <memory>
export module connpolicy.testing:loopback_server;
import connpolicy.core;

export namespace connpolicy {

class LoopbackServer {
 public:
  enum class Mode {
    client_closes_first,  // read until the client closes, then close: TIME_WAIT on the client
    server_closes_first,  // close each connection as soon as it is accepted
    reset_on_accept,      // reset each connection as soon as it is accepted (SO_LINGER {1,0})
  };

  // Listens on 127.0.0.1:port (0: the kernel's choice; a given port is bound with SO_REUSEADDR,
  // as servers do to restart at once); throws std::system_error when it cannot.
  explicit LoopbackServer(Mode mode = Mode::client_closes_first, std::uint16_t port = 0);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  Endpoint endpoint() const noexcept;
  int accepted() const noexcept;  // connections accepted so far
  int closed() const noexcept;    // connections this server has closed
  // Waits until `n` connections are closed on this side; false if `timeout` passed first.
  bool wait_closed(int n, std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace connpolicy
