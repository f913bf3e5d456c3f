// Distribution of the input data: rank 0 loads and preprocesses, every rank receives the result (images,
// SO(3) items and the SO(3) grid chosen from them).
#pragma once

#include "eqntk/io/dataset.hpp"
#include "eqntk/io/so3_dataset.hpp"
#include "eqntk/so3/grid_choice.hpp"

namespace eqntk::parallel {

/// Replaces `d` on every rank other than 0 with rank 0's data set (images, targets, source indices,
/// rotations, class count), in chunks of 2²⁶ elements so that no MPI count exceeds int. Collective over
/// MPI_COMM_WORLD.
void broadcast_dataset(io::Dataset& d);

/// As broadcast_dataset, except that the images are not replicated: rank myrow·pcols + mycol of a
/// prows×pcols grid keeps (or receives) only the images its Gram tiles touch (held_images in
/// block_cyclic.hpp, block size nb), as a partial ImageSet; targets, source indices and rotations stay
/// whole. Memory per rank O(N/prows + N/pcols + M/prows) images instead of O(N + M). Collective over
/// MPI_COMM_WORLD; rank 0 must hold the whole (dense) data set.
void distribute_dataset(io::Dataset& d, int prows, int pcols, std::int64_t nb);

/// Replaces `items` on every rank other than 0 with rank 0's SO(3) items (kind, L, C, channel scale, every
/// coefficient of every signal or atom). Collective over MPI_COMM_WORLD.
void broadcast_so3_items(io::So3Items& items);

/// Replaces `g` on every rank other than 0 with rank 0's SO(3) grid choice. Collective over MPI_COMM_WORLD.
void broadcast_grid_choice(so3::GridChoice& g);

}  // namespace eqntk::parallel
