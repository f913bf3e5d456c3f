// The FFTW plans behind detail::FftPlan (private to src/so3).
#pragma once

#include <fftw3.h>

#include "eqntk/so3/network.hpp"

namespace eqntk::so3::detail {

/// c2r synthesis of one β slice: input N×(N/2+1) complex (row = m mod N, column = n ≥ 0), output N×N real
/// (row = α index a, column = γ index g), unnormalised e^{+i(mα+nγ)} (FFTW_BACKWARD). Arrays passed to
/// execute() must come from fftw_malloc (the alignment the plan was made with). The input is destroyed.
/// r2c (only planned for band-limited networks, else null): the analysis N×N real → N×(N/2+1) complex,
/// unnormalised e^{−i(mα+nγ)} (FFTW_FORWARD), same layouts and alignment rule; the input is preserved.
struct FftPlan {
  int n = 0;
  fftw_plan c2r = nullptr;
  fftw_plan r2c = nullptr;
  void execute(fftw_complex* in, double* out) const { fftw_execute_dft_c2r(c2r, in, out); }
  void forward(double* in, fftw_complex* out) const { fftw_execute_dft_r2c(r2c, in, out); }
};

}  // namespace eqntk::so3::detail
