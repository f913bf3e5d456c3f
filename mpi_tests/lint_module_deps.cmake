# Lint (issue 14): module boundaries of the plain-data layers. Fails listing every offending #include:
#   data/ (include/eqntk/data)            includes no other eqntk header (plain image types);
#   io/ and solve/ (headers and sources)   include nothing from eqntk/kernel/ (they see images as data::,
#                                          the group action through group/image_action.hpp);
#   group/                                 includes nothing from eqntk/kernel/ or eqntk/io/.
# Run: cmake -DROOT=<source dir> -P lint_module_deps.cmake
set(bad "")
function(check_dir glob_dirs pattern why)
  set(files "")
  foreach(d IN LISTS glob_dirs)
    file(GLOB_RECURSE found ${ROOT}/${d}/*.hpp ${ROOT}/${d}/*.cpp ${ROOT}/${d}/*.inc)
    list(APPEND files ${found})
  endforeach()
  foreach(f IN LISTS files)
    file(STRINGS ${f} lines REGEX "^#include \"${pattern}")
    foreach(line IN LISTS lines)
      string(APPEND bad "${f}: ${line}  (${why})\n")
    endforeach()
  endforeach()
  set(bad "${bad}" PARENT_SCOPE)
endfunction()
check_dir("include/eqntk/data" "eqntk/" "data/ depends on nothing")
check_dir("include/eqntk/io;src/io;include/eqntk/solve;src/solve" "eqntk/kernel/" "io/ and solve/ do not depend on the kernel")
check_dir("include/eqntk/group;src/group" "eqntk/(kernel|io)/" "group/ depends on data/ only")
if(bad)
  message(FATAL_ERROR "module boundary crossed:\n${bad}")
endif()
