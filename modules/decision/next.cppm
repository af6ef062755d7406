// What a driver of ConnectCore does next: the core's one answer to every report.
module;
#include <cstdint>
export module connpolicy.decision:next;

export namespace connpolicy {

// What a driver does next.
enum class Next : std::uint8_t {
  resolve,      // look up name()'s addresses, then report resolved() or resolve_failed(); or, asking
                // both families at once, each answer()ed as it comes
  lookup_wait,  // wait for the other family's answer until lookup_wake_at(): answered() or lookup_woke()
  attempt,      // call prepare(): the core asks the bind policy for a plan (no syscall yet)
  census,       // answer census_question() where a thread may block (never an io thread), then
                // report census_answered(), or census_failed() with what it threw
  connect,      // make the attempt with plan() to remote(), then report connected(), failed() or timed_out()
  wait,         // wait delay(), then report waited()
  race,         // wait for a racer or until wake_at(), then report answered() and its outcome, or woke()
  done,         // finished: succeeded(), or take_error()
};

}  // namespace connpolicy
