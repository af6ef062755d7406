# Warnings for connpolicy's own targets only (never forced on consumers).
function(connpolicy_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang|GNU")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                             -Wno-sign-conversion)
    # Designated initializers that leave defaulted members out are the intended style
    # (e.g. ExponentialRetry{{.initial = 50ms}}); clang 19 warns about them under -Wextra.
    if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      target_compile_options(${target} PRIVATE -Wno-missing-designated-field-initializers)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4)
  endif()
endfunction()
