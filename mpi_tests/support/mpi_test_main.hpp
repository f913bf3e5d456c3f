// Support for GoogleTest programs that run on several MPI ranks (registered with eqntk_add_mpi_test).
//
// Every assertion must be on a value that all ranks agree on, or a rank that fails an ASSERT returns
// while the others wait in the next collective. all_ranks()/max_over_ranks() reduce first.
#pragma once

#include <mpi.h>

#include <string>

namespace eqntk::testing {

/// True on every rank when `ok` is true on every rank. Collective.
inline bool all_ranks(bool ok) {
  int v = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return v != 0;
}

/// Largest value over ranks. Collective.
inline double max_over_ranks(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return v;
}

inline int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

}  // namespace eqntk::testing
