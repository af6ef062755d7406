// The error policy contract: after a failed attempt the Connector asks the error policy what to
// do, giving it the error and what is possible.
module;
#include <concepts>
#include <cstdint>
#include <string_view>
export module connpolicy.errors:action;
import connpolicy.core;

export namespace connpolicy {

enum class Action : std::uint8_t {
  rebind,         // try the same endpoint again at once, from another local port
  retry,          // wait as the retry policy says, then start again from the first endpoint
  next_endpoint,  // try the next endpoint at once (when there is none: retry)
  give_up,        // return the error
};
std::string_view to_string(Action action) noexcept;

struct Failure {
  const NetError& error;
  bool can_rebind = false;          // the bind policy can offer another port, and the round's
                                    // rebind budget is not spent
  bool has_next_endpoint = false;   // connect() was given more endpoints after this one
  bool can_change_address = false;  // the attempt's bind failed and the bind policy can offer another
                                    // local address (SourceAddressPool), within the rebind budget
};

template <class E>
concept ErrorPolicy = std::copy_constructible<E> && requires(const E& policy, const Failure& failure) {
  { policy.classify(failure) } -> std::same_as<Action>;
};

}  // namespace connpolicy
