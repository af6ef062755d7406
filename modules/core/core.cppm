// connpolicy.core: errors, endpoints, sockets, time and the system API that everything else
// builds on.
export module connpolicy.core;
export import :error;
export import :endpoint;
export import :host_port;
export import :resolver;
export import :net_error;
export import :system;
export import :socket;
export import :ports;
export import :time;
