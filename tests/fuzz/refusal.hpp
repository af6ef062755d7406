// The invariant every parser of outside input keeps when it refuses: invalid_argument, and a
// message of one bounded line with no raw control bytes. Traps (a fuzzer finding) otherwise.
#pragma once
#include <string>
#include <system_error>

template <class Error>
void check_refusal(const Error& error) {
  if (error.code() != connpolicy::Errc::invalid_argument) __builtin_trap();
  const std::string m = error.message();
  if (m.size() > 1024) __builtin_trap();
  for (char c : m)
    if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
}
