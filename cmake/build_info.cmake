# Regenerates build_info.hpp at every build so that `eqntk --version` and metrics.json carry the git SHA
# of the tree that was compiled (with -dirty for uncommitted changes); rewrites only on change.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY "${SRC}" OUTPUT_VARIABLE EQNTK_GIT_SHA
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT EQNTK_GIT_SHA)
  set(EQNTK_GIT_SHA "unknown")
else()
  execute_process(COMMAND git diff --quiet HEAD -- src include CMakeLists.txt WORKING_DIRECTORY "${SRC}" RESULT_VARIABLE dirty)
  if(NOT dirty EQUAL 0)
    set(EQNTK_GIT_SHA "${EQNTK_GIT_SHA}-dirty")
  endif()
endif()
configure_file("${IN}" "${OUT}.tmp" @ONLY)
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
