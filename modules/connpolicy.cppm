// The umbrella: `import connpolicy;` brings the whole library.
// Layers, one way only: core -> diag (the kernel census) -> policies (bind, retry, errors)
// -> decision (ConnectCore: every decision, no I/O) -> connector (the blocking driver) -> this.
// The Asio driver is `import connpolicy.asio;` (target connpolicy::asio), built when Asio is found.
// The fakes for tests are their own module: `import connpolicy.testing;`.
export module connpolicy;
export import connpolicy.core;
export import connpolicy.diag;
export import connpolicy.bind;
export import connpolicy.retry;
export import connpolicy.errors;
export import connpolicy.decision;
export import connpolicy.connector;
