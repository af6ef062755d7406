// Counts this process's open descriptors (Windows: handles, sockets among them), so a test can
// show that nothing leaked.
#pragma once
#include <cstddef>
#ifdef _WIN32
#include <windows.h>

namespace test_support {
inline std::size_t open_fd_count() {
  DWORD n = 0;
  ::GetProcessHandleCount(::GetCurrentProcess(), &n);
  return n;
}
}  // namespace test_support
#else
#include <filesystem>

namespace test_support {
inline std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;  // includes the descriptor of the directory being read, the same each time
}
}  // namespace test_support
#endif
