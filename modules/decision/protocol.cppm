// The decision core's protocol, closed: what a driver is told to do (Command) and what it may
// tell the core back (the six events). A driver is a loop:
//
//   for (Command c = core.poll();; c = core.poll()) {
//     perform c; report at most one event (core.handle(...)) as the table below allows;
//     if (c.kind == Command::Kind::done) break;
//   }
//
//   command      what the driver does                              what it reports
//   look_up      start the lookups of core.name() within `limit`   nothing (answers come in a wait)
//   ask_census   core.census_question()->answer(), where a thread  CensusAnswered{thrown}
//                may block (never an event loop's thread)
//   open         a socket for `remote`, `plan`'s options, bind     Connected{id} or Failed{id, ...} when
//                `plan->local`, connect                            it is already decided, else nothing
//   wait         wait at most `limit` for: an attempt's outcome,   Connected / Failed / Answered /
//                an answer (when answers_due), a census answer     CensusAnswered, or Woke when `limit`
//                (when census_due), or a stop                      passed, or Stopped
//   close        close attempt `id`'s socket with a reset          nothing
//   done         won: the socket of `id` takes core.take_lease();  nothing: the loop ends; then
//                else the error is core.take_error()               core.rethrow_hook_failure()
//
// Stopped may be reported instead of any event, whenever the driver sees its stop: it is the one
// way to say so. Whatever is in flight then is closed by the core's close commands. An event the
// core no longer expects (a late word on an attempt it has closed, an answer after the end) is
// ignored.
module;
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <vector>
export module connpolicy.decision:protocol;
import connpolicy.core;
import connpolicy.bind;

export namespace connpolicy {

// What the core knows an attempt (a socket in flight) by.
using AttemptId = std::size_t;

// What a driver does next. Pointers point into the core, valid until the next poll() or handle().
struct Command {
  enum class Kind : std::uint8_t { look_up, ask_census, open, close, wait, done };
  Kind kind;
  AttemptId id = 0;                  // open, close; done: the winner when won
  const Endpoint* remote = nullptr;  // open
  const BindPlan* plan = nullptr;    // open
  // wait: how long at most (longer than a day means: until an event), and until when on the
  // connector's clock (time_point::max() when the core did not read it: a lone attempt's wait).
  Timer::duration limit{};
  Timer::time_point until = Timer::time_point::max();
  std::chrono::milliseconds lookup_limit{};  // look_up: each family's lookup, at most
  bool answers_due = false;                  // wait: a family's answer may end it
  bool census_due = false;                   // wait: the census answer ends it
  bool won = false;                          // done
};

// --- Events: what happened, told to the core with core.handle(event).

// A lookup's answers: one family's, or both when both are in hand.
struct Answered {
  FamilyAnswer first;
  std::optional<FamilyAnswer> second;
};
// Attempt `id` connected (the driver has done its own success work, e.g. blocking mode again).
struct Connected {
  AttemptId id;
};
// Attempt `id` failed at `step`; the driver has closed its socket already, so a port that goes
// back to its rotation is really free.
struct Failed {
  AttemptId id;
  Step step;
  std::error_code code;
  std::string detail{};
};
// The wait's whole `limit` passed with nothing else to report.
struct Woke {};
// The driver's stop fired. `by` says what stopped it, for the error's message ("the
// std::stop_token", "the operation's cancellation slot"); the first one said is kept.
struct Stopped {
  const char* by = "the std::stop_token";
};
// The census question was answered (thrown: what answer() threw, if it did).
struct CensusAnswered {
  std::exception_ptr thrown{};
};

}  // namespace connpolicy
