// Dense SO(3) Gram matrices on one process (for `eqntk kernel`, tests and tools), shaped like
// kernel::gram_matrices.
#pragma once

#include <vector>

#include "eqntk/kernel/gram.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/pair_kernel.hpp"

namespace eqntk::so3 {

/// K(x1_i, x2_j), Θ(x1_i, x2_j) for all i, j (row-major n1×n2); with x2 == nullptr the symmetric Gram matrix
/// of x1, whose entries i ≥ j are evaluated once as K(x1_i, x1_j) and mirrored (exactly symmetric). Self
/// chains and pairs run on `threads` OpenMP threads, one PairKernel each; the result does not depend on the
/// thread count. Throws InvalidArgument if a signal does not match the network's L and C.
[[nodiscard]] kernel::GramPair gram_matrices(const Network& net, const std::vector<Signal>& x1,
                                             const std::vector<Signal>* x2, int threads = 1);

/// The same for molecules given as per-atom signals (atom_signals), with MoleculeKernel(net, sum, slots).
[[nodiscard]] kernel::GramPair molecule_gram_matrices(const Network& net, MoleculeSum sum, int slots,
                                                      const std::vector<std::vector<Signal>>& m1,
                                                      const std::vector<std::vector<Signal>>* m2, int threads = 1);

/// A per-channel scale 1/rms_c with rms_c² = mean over all atoms of ‖x_c‖²/(4π) (the mean square of the
/// channel over the sphere), from a training set; 1 for channels that are zero throughout. Pass it as
/// AtomSignalOptions::channel_scale for every molecule (train and test) — SO3_MATH.md Appendix B, "Scale".
[[nodiscard]] std::vector<double> channel_rms_scale(const std::vector<std::vector<Signal>>& train_atoms);

}  // namespace eqntk::so3
