// Counts this process's open descriptors, so a test can show that nothing leaked.
#pragma once
#include <cstddef>
#include <filesystem>

namespace test_support {
inline std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;  // includes the descriptor of the directory being read, the same each time
}
}  // namespace test_support
