# CONNPOLICY_SANITIZE: a -fsanitize= list for connpolicy's own build ("address,undefined",
# "thread"; empty: none). The flags are added to every target of this build, after whatever the
# user put in CMAKE_CXX_FLAGS, never in place of it. The dev (address,undefined) and tsan presets set it.
set(CONNPOLICY_SANITIZE "" CACHE STRING "sanitizers for connpolicy's own build, as for -fsanitize=")
if(CONNPOLICY_SANITIZE)
  add_compile_options(-fsanitize=${CONNPOLICY_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${CONNPOLICY_SANITIZE})
  if(CONNPOLICY_SANITIZE MATCHES "address|undefined")
    add_compile_options(-fno-sanitize-recover=all)
  endif()
endif()
# The libFuzzer targets need the library instrumented for coverage, without libFuzzer's main.
if(CONNPOLICY_BUILD_FUZZERS)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
