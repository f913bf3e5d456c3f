// Making errors collective: a failure on one rank must end every rank with the same message, never
// leave the others waiting in a collective (STYLE.md, Errors).
#pragma once

#include <exception>
#include <functional>

namespace eqntk::parallel {

/// Collective over MPI_COMM_WORLD. If any rank passes a non-null error, every rank throws the error of
/// the lowest such rank, with its message and type (InvalidArgument, NumericalError, IoError, WriteError or Error;
/// other exceptions become Error). Returns normally on every rank when no rank has an error.
void agree_on_errors(const std::exception_ptr& local_error);

/// Runs `f` on this rank, then agree_on_errors() with whatever it threw. Collective.
void collectively(const std::function<void()>& f);

/// Runs `f` on rank 0 only (file checks, manifests), then broadcasts the verdict. Collective.
void on_root(const std::function<void()>& f);

}  // namespace eqntk::parallel
