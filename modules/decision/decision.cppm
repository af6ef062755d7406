// connpolicy.decision: what a connect decides, apart from how it waits.
//   ConnectorOptions, not_a_destination, not_a_source  what is refused before any syscall
//   AttemptEvent, ConnectObserver                      what an observer sees, one event per attempt
//   ConnectCore                                        the decisions, with no I/O; every driver runs it
//   interleave_families                                the order a name's addresses are tried in
//
// A driver is a loop over ConnectCore's commands (protocol.cppm has the table; docs/driver.md
// says what a driver must get right):
//
//   ConnectCore core(bind, retry, error, options, observer, remotes or name, problem);
//   core.enable_race();  // if the driver can wait for several sockets at once
//   for (;;) {
//     if (stop came) core.handle(Stopped{});
//     Command c = core.poll();
//     switch (c.kind) { look_up, ask_census, open, wait, close: do it, then core.handle(event);
//                       done: the winner's socket takes core.take_lease(), or core.take_error() }
//   }
export module connpolicy.decision;
export import :options;
export import :events;
export import :rare_list;
export import :race_book;
export import :lookup_book;
export import :protocol;
export import :attempt_table;
export import :connect_core;
