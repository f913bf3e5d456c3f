// OpenBLAS picks its kernels from the CPU model at load time; on CPUs it does not know (new Xeons, some
// virtual machines) it falls back to generic SSE3 "Prescott" kernels, 4-5x slower than the AVX2/AVX-512
// ones the CPU supports. OPENBLAS_CORETYPE, read at load time, overrides the choice.
#pragma once

#include <string>

namespace eqntk {

/// The OpenBLAS kernel family in use ("" when the BLAS is not OpenBLAS).
[[nodiscard]] std::string blas_core();

/// The OPENBLAS_CORETYPE this CPU should use when OpenBLAS chose a generic core although the CPU has
/// AVX-512 ("SkylakeX") or AVX2/FMA ("Haswell"); "" when the choice is fine or was set by the user.
[[nodiscard]] std::string better_blas_core();

/// When better_blas_core() is not empty, sets OPENBLAS_CORETYPE and re-executes the program (so
/// OpenBLAS loads again with it). Call first thing in main(), before MPI_Init; returns if nothing to do
/// or if exec fails.
void reexec_with_better_blas_core(char** argv);

}  // namespace eqntk
