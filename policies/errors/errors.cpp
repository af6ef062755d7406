module;
#include <string_view>
module connpolicy.errors;

namespace connpolicy {
std::string_view to_string(Action action) noexcept {
  switch (action) {
    case Action::rebind: return "rebind";
    case Action::retry: return "retry";
    case Action::next_endpoint: return "next_endpoint";
    case Action::give_up: return "give_up";
  }
  return "action";
}
}  // namespace connpolicy
