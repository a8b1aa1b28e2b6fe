# Flags for the project's own targets only (tests, examples, benchmarks): never put on the
# INTERFACE of backprop::backprop, so consumers keep their own choices.
function(backprop_own_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*) when Eigen's AVX-512
    # kernels are inlined: a false positive, GCC bug 105593, fixed in GCC 13. (clang builds
    # keep these warnings.)
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)
  endif()
  # Our programs keep Eigen's OpenMP when it is there (./scripts/test.sh --no-openmp: without).
  if(TARGET backprop_openmp)
    target_link_libraries(${target} PRIVATE backprop_openmp)
  endif()
  if(BACKPROP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(BACKPROP_MARCH)
    target_compile_options(${target} PRIVATE -march=${BACKPROP_MARCH})
  endif()
  if(BACKPROP_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined
                                             -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    # libstdc++'s bounds checks (operator[], front, back, ...): cheap, and no ABI change.
    target_compile_definitions(${target} PRIVATE _GLIBCXX_ASSERTIONS)
    # Tensor::resize fills with NaN: a buffer read before it is written fails the tests.
    target_compile_definitions(${target} PRIVATE BACKPROP_POISON_RESIZE)
  endif()
endfunction()
