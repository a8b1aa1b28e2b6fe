# Included by backpropConfig.cmake and by add_subdirectory(backprop): one line at configure
# time when the consumer builds without optimisation, where a training step is ~200x slower
# (measured: 464 ms instead of 2.3 ms for reference 1's MLP at batch 64). Silence it with
# -DBACKPROP_NO_BUILD_TYPE_NOTE=ON. Multi-config generators choose later: nothing is said.
if(NOT BACKPROP_NO_BUILD_TYPE_NOTE AND NOT CMAKE_CONFIGURATION_TYPES
   AND NOT DEFINED _backprop_build_type_note_said)
  set(_backprop_build_type_note_said TRUE)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" _backprop_bt)
  if(_backprop_bt STREQUAL "" OR _backprop_bt STREQUAL "DEBUG")
    # An explicit -O in CMAKE_CXX_FLAGS (other than -O0) counts as optimised.
    if(NOT CMAKE_CXX_FLAGS MATCHES "(^| )-O([1-3sz]|fast|g)?( |$)"
       OR CMAKE_CXX_FLAGS MATCHES "(^| )-O0( |$)")
      if(_backprop_bt STREQUAL "")
        set(_backprop_bt "no CMAKE_BUILD_TYPE")
      else()
        set(_backprop_bt "CMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}")
      endif()
      message(NOTICE "backprop: ${_backprop_bt}, so no optimisation: training with backprop "
                     "runs about 200x slower than with -DCMAKE_BUILD_TYPE=Release "
                     "(-DBACKPROP_NO_BUILD_TYPE_NOTE=ON silences this)")
    endif()
  endif()
  unset(_backprop_bt)
endif()
