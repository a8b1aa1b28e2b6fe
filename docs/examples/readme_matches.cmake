# Fails unless EXAMPLE's text appears verbatim in README (inside its ```cpp block).
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${readme}" "${example}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md's code block differs from ${EXAMPLE}: update one from the other")
endif()
