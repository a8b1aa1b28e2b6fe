# cmake -DSOURCE=... -DBINARY=... -DARGS=a;b [-DEXPECT=regex] [-DREJECT=regex]
#       -P build_and_run.cmake
# Configures, builds and runs a consumer project; fails on any error. EXPECT (REJECT): a
# regular expression the configure output must (must not) match.
file(REMOVE_RECURSE ${BINARY})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} ${ARGS} RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc)
  message(FATAL_ERROR "configuring ${SOURCE} failed")
endif()
if(DEFINED EXPECT AND NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "the configure output does not match '${EXPECT}'")
endif()
if(DEFINED REJECT AND "${out}${err}" MATCHES "${REJECT}")
  message(FATAL_ERROR "the configure output matches '${REJECT}'")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building ${SOURCE} failed")
endif()
execute_process(COMMAND ${BINARY}/consumer WORKING_DIRECTORY ${BINARY} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "running the consumer failed")
endif()
