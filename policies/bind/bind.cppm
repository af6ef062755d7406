// connpolicy.bind: how a connection picks its local address and port.
//   NoBind             the kernel picks at connect()            (the seed's 3rd case)
//   EphemeralBind      bind port 0 [on a source address]        (the seed's 1st fix)
//   FixedPort          one port                                 (the seed's original bug)
//   FixedPortRotation  ports from a range, TIME_WAIT-aware       (the seed's 2nd fix)
//   SourceAddressPool  several source addresses, kernel ports    (scale past 64 k to one server)
//   KernelPortRange    kernel-picked ports from a given range    (IP_LOCAL_PORT_RANGE)
export module connpolicy.bind;
export import :plan;
export import :no_bind;
export import :ephemeral_bind;
export import :fixed_port;
export import :fixed_port_rotation;
export import :rotation_slots;  // FixedPortRotation's pieces, exported for its unit tests only
export import :rotation_census;
export import :source_address_pool;
export import :kernel_port_range;
