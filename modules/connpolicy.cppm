// The umbrella: `import connpolicy;` brings the whole library. Policies and the Connector join
// here as their modules land (core -> policies -> connector -> umbrella, never upward).
// The fake system for tests is its own module: `import connpolicy.testing;`.
export module connpolicy;
export import connpolicy.core;
