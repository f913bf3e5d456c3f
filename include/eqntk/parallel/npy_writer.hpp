// Collective .npy output of distributed matrices with MPI-IO: rank 0 writes the header, every rank
// writes its own blocks straight into their places in global row-major (C) order through an MPI
// darray file view that mirrors the ScaLAPACK block-cyclic layout. No rank ever holds the whole matrix.
#pragma once

#include <filesystem>

#include "eqntk/parallel/process_grid.hpp"

namespace eqntk::parallel {

/// Writes `a` (m×n float64, C order) to `path`. Collective. The caller names a `.partial` path and
/// renames it when every output is complete. Throws WriteError (on every rank) when the file cannot be
/// written (a runtime failure: the location was checked before the job).
void write_npy_collective(const std::filesystem::path& path, const DistMatrix& a);

}  // namespace eqntk::parallel
