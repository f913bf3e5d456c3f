# The command line of one tool (tools/tool_options.hpp), checked through the real binary:
#   an unknown flag             exit 2, nothing on stdout, one line "<name>: ..." on stderr naming the flag
#   a malformed number          exit 2, nothing on stdout, one line "<name>: ..." naming the flag and the value
#                               (12x; for an integer flag also 2.5)
#   a flag without its value    exit 2, nothing on stdout, one line "<name>: ..." naming the flag
#   --help                      exit 0, "usage: <name>" on stdout listing NUMBER_FLAG with its default, no stderr
# Every case ends before any computation (TIMEOUT keeps a tool that starts computing from passing).
# Run: cmake -DTOOL=<binary> -DNAME=<tool name> -DNUMBER_FLAG=<a flag taking a number, e.g. --size>
#            -DNUMBER_KIND=<integer|real> -P tool_command_line.cmake
foreach(var TOOL NAME NUMBER_FLAG NUMBER_KIND)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "tool_command_line.cmake needs -D${var}=...")
  endif()
endforeach()

set(failures "")

# Runs TOOL with the arguments after `label` and `expected_rc`; checks the exit status and, for a failure, that
# stdout is empty and stderr is exactly one line starting with "<NAME>: " and containing every string of
# `must_contain` (a list).
function(expect_rejected label must_contain)
  execute_process(COMMAND ${TOOL} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
  set(problems "")
  if(NOT rc STREQUAL "2")
    string(APPEND problems " exit status '${rc}' (want 2);")
  endif()
  if(NOT out STREQUAL "")
    string(APPEND problems " stdout not empty: '${out}';")
  endif()
  if(NOT err MATCHES "^${NAME}: [^\n]*\n$")
    string(APPEND problems " stderr is not one line '${NAME}: ...': '${err}';")
  endif()
  foreach(s IN LISTS must_contain)
    string(FIND "${err}" "${s}" at)
    if(at EQUAL -1)
      string(APPEND problems " stderr does not name '${s}';")
    endif()
  endforeach()
  if(problems)
    set(failures "${failures}${label} (${ARGN}):${problems}\n" PARENT_SCOPE)
  endif()
endfunction()

expect_rejected("unknown flag" "--no-such-flag" --no-such-flag)
expect_rejected("malformed number" "${NUMBER_FLAG};12x" ${NUMBER_FLAG} 12x)
if(NUMBER_KIND STREQUAL "integer")
  expect_rejected("number with a fraction" "${NUMBER_FLAG};2.5" ${NUMBER_FLAG} 2.5)
endif()
expect_rejected("missing value" "${NUMBER_FLAG}" ${NUMBER_FLAG})

execute_process(COMMAND ${TOOL} --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
if(NOT rc STREQUAL "0")
  string(APPEND failures "--help: exit status '${rc}' (want 0)\n")
endif()
if(NOT err STREQUAL "")
  string(APPEND failures "--help: stderr not empty: '${err}'\n")
endif()
if(NOT out MATCHES "^usage: ${NAME} " OR NOT out MATCHES "\n  ${NUMBER_FLAG} arg \\(=[^)]+\\)")
  string(APPEND failures "--help: stdout lacks 'usage: ${NAME}' or '${NUMBER_FLAG} arg (=<default>)':\n${out}\n")
endif()

if(failures)
  message(FATAL_ERROR "${NAME} command line:\n${failures}")
endif()
