# Lint (issue 14): rotation/reflection index arithmetic lives in the group module only
# (include/eqntk/group, src/group). Fails listing every line of src/ or include/ elsewhere that does
# quarter-turn arithmetic by hand (mod 4, a hand-written R(a, b) = (−b, a), a private rotate helper).
# Run: cmake -DROOT=<source dir> -P lint_group_math.cmake
file(GLOB_RECURSE files ${ROOT}/src/*.cpp ${ROOT}/src/*.hpp ${ROOT}/src/*.inc ${ROOT}/include/*.hpp)
set(bad "")
foreach(f IN LISTS files)
  if(f MATCHES "/src/group/" OR f MATCHES "/include/eqntk/group/")
    continue()
  endif()
  file(STRINGS ${f} lines)
  set(n 0)
  foreach(line IN LISTS lines)
    math(EXPR n "${n} + 1")
    if(line MATCHES "%[ ]*4([^0-9]|$)" OR line MATCHES "rotate_offset" OR line MATCHES "=[ ]*-b[ ;,]"
       OR line MATCHES "rot90_index|mirror_index")
      string(APPEND bad "${f}:${n}: ${line}\n")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "rotation/reflection index arithmetic outside the group module:\n${bad}")
endif()
