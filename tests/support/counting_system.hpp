// The real system API, counting bind() calls: the measure of how well a bind policy picks ports
// (one bind per connection is the best it can do). Include after `import connpolicy;`.
#pragma once
#include <atomic>
#include <memory>
#include <system_error>

namespace test_support {

struct CountingSystem : connpolicy::NativeSystem {
  // Shared, so copies of the system (a Connector holds one by value) count into the same place.
  std::shared_ptr<std::atomic<int>> binds = std::make_shared<std::atomic<int>>(0);
  std::error_code bind(connpolicy::native_handle_type h, const connpolicy::Endpoint& local) const noexcept {
    ++*binds;
    return connpolicy::NativeSystem::bind(h, local);
  }
};

}  // namespace test_support
