// connpolicy.testing: stand-ins for the OS and for time, for your unit tests and ours.
// Not part of `import connpolicy;`: production code does not carry them.
export module connpolicy.testing;
export import :fake_system;
export import :manual_timer;
export import :fake_census;
export import :fake_resolver;
export import :loopback_server;
