// connpolicy.decision: what a connect decides, apart from how it waits.
//   ConnectorOptions, not_a_destination, not_a_source  what is refused before any syscall
//   AttemptEvent, ConnectObserver                      what an observer sees, one event per attempt
//   ConnectCore                                        the decisions, with no I/O; every driver runs it
export module connpolicy.decision;
export import :options;
export import :events;
export import :connect_core;
