// Distribution of the input data: rank 0 loads and preprocesses, every rank receives the result.
#pragma once

#include "eqntk/io/dataset.hpp"

namespace eqntk::parallel {

/// Replaces `d` on every rank other than 0 with rank 0's data set (images, targets, source indices,
/// rotations, class count), in chunks of 2²⁶ elements so that no MPI count exceeds int. Collective over
/// MPI_COMM_WORLD.
void broadcast_dataset(io::Dataset& d);

}  // namespace eqntk::parallel
