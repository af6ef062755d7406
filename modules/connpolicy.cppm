// The umbrella: `import connpolicy;` brings the whole library.
// Layers, one way only: core -> diag (the kernel census) -> policies (bind, retry, errors)
// -> connector -> this.
// The fakes for tests are their own module: `import connpolicy.testing;`.
export module connpolicy;
export import connpolicy.core;
export import connpolicy.diag;
export import connpolicy.bind;
export import connpolicy.retry;
export import connpolicy.errors;
export import connpolicy.connector;
