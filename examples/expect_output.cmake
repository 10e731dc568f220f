# Runs PROGRAM (passed with -D) and fails unless it exits 0, its standard output matches STDOUT
# and its standard error matches STDERR (regular expressions).
execute_process(COMMAND ${PROGRAM} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE code
                TIMEOUT 100)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${code}:\n${out}\n${err}")
endif()
if(NOT out MATCHES "${STDOUT}")
  message(FATAL_ERROR "${PROGRAM}: standard output does not match `${STDOUT}`:\n${out}")
endif()
if(NOT err MATCHES "${STDERR}")
  message(FATAL_ERROR "${PROGRAM}: standard error does not match `${STDERR}`:\n${err}")
endif()
message(STATUS "${PROGRAM}: output as expected\n${out}${err}")
