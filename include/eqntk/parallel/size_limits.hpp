// Size limits of a distributed job, checked before any heavy work (STYLE.md, Errors). ScaLAPACK indexes
// local arrays, workspaces and descriptors with Fortran's 32-bit int and MPI counts are int, so a job whose
// local blocks, eigensolver workspace or MPI-IO counts would pass 2³¹−1 must stop at validation time, not
// after hours of kernel evaluation (or, worse, with one rank throwing while the others wait in a
// collective). Pure functions, no MPI: every rank computes the same verdict from the same numbers.
//
// Worked example: N = 80 272 training images on a 1×3 grid, nb = 32: the N×N training matrix has 2 508
// full column blocks and a half one; process column 0 holds 836 full blocks and the half = 26 768 columns,
// so its local block is 80 272 × 26 768 = 2 148 720 896 elements > 2³¹−1 = 2 147 483 647: rejected.
#pragma once

#include <cstdint>

namespace eqntk::parallel {

/// The distributed matrices of a job: N×N (training), M×N (test) on a P×Q grid with block size nb.
struct JobSizes {
  std::int64_t n_train = 0, n_test = 0, nb = 1;
  int prows = 1, pcols = 1;
  bool eigensolver = false;   ///< finite training times: one pdsyevr of the N×N matrix
  bool save_kernels = false;  ///< the four matrices are written with MPI-IO
};

/// Throws InvalidArgument with one line naming the first limit `s` exceeds and what to change: a global
/// dimension or a local block over ScaLAPACK's int range (also the MPI-IO count of --save-kernels), the
/// eigensolver's workspace over the int range. Pure; the same verdict on every rank.
void check_size_limits(const JobSizes& s);

}  // namespace eqntk::parallel
