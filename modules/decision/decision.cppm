// connpolicy.decision: what a connect decides, apart from how it waits.
//   ConnectorOptions, not_a_destination, not_a_source  what is refused before any syscall
//   AttemptEvent, ConnectObserver                      what an observer sees, one event per attempt
//   ConnectCore                                        the decisions, with no I/O; every driver runs it
//   interleave_families                                the order a name's addresses are tried in
//
// A driver's loop, in full (the blocking Connector's is this, plus the syscalls):
//
//   ConnectCore core(bind, retry, error, options, observer, remotes or name, problem);
//   for (Next next = core.start();;) switch (next) {
//     case Next::resolve:  // ask for core.name()'s IPv6 and IPv4 addresses within core.resolve_timeout()
//       next = core.resolved(v6, v4) or core.resolve_failed(error); break;
//       // or, asking both at once: next = core.lookup_answered(family, answer, now) for the first
//     case Next::lookup_wait:  // the other answer, until core.lookup_wake_at()
//       next = answer ? core.lookup_answered(family, answer, now) : core.lookup_woke(now); break;
//     case Next::attempt: next = core.prepare(stop_requested()); break;
//     case Next::census:   // the bind policy's census question, answered where a thread may block
//       next = core.census_answered() (or core.census_failed(thrown)); break;
//     case Next::connect:  // socket, core.plan()'s options, bind core.plan().local, connect to
//                          // core.remote(), wait at most core.attempt_timeout(); then one of
//       next = ok ? core.connected(lease_goes_to_socket) : core.failed(step, ec) / core.timed_out();
//       break;
//     case Next::wait: next = core.waited(slept_for(core.delay())); break;
//     case Next::done: return core.succeeded() ? socket : core.take_error();
//   }
//
// A driver that can wait for several sockets at once calls enable_race() first; then a name's
// addresses race (Happy Eyeballs, RFC 8305): after Next::connect a connect still in progress is
// reported launched(now) (the racer's id), and Next::race means: wait for any racer's socket
// until wake_at(), then report answered(id) and connected()/failed() as above, or, when none
// answered, expire overdue(now) (close it, answered(id), timed_out()) or ask woke(now).
// Next::done or connected() ends the race: close every other racer's socket with a reset first.
// While core.awaiting_answer(), a racing driver also looks for the late family's answer between
// its waits and reports it with lookup_answered(); lookup_stopped() when a stop comes meanwhile.
export module connpolicy.decision;
export import :options;
export import :events;
export import :race_book;
export import :lookup_book;
export import :next;
export import :connect_core;
