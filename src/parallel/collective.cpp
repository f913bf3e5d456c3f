#include "eqntk/parallel/collective.hpp"

#include <mpi.h>

#include <climits>
#include <string>

#include "eqntk/error.hpp"

namespace eqntk::parallel {
namespace {

enum ErrorCode : int { kError = 0, kInvalidArgument = 1, kNumerical = 2, kIo = 3, kWrite = 4 };

void classify(const std::exception_ptr& e, int& code, std::string& message) {
  try {
    std::rethrow_exception(e);
  } catch (const InvalidArgument& x) {
    code = kInvalidArgument;
    message = x.what();
  } catch (const NumericalError& x) {
    code = kNumerical;
    message = x.what();
  } catch (const WriteError& x) {
    code = kWrite;
    message = x.what();
  } catch (const IoError& x) {
    code = kIo;
    message = x.what();
  } catch (const std::exception& x) {
    code = kError;
    message = x.what();
  } catch (...) {
    code = kError;
    message = "unknown error";
  }
}

}  // namespace

void agree_on_errors(const std::exception_ptr& local_error) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int root = local_error ? rank : INT_MAX;
  MPI_Allreduce(MPI_IN_PLACE, &root, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (root == INT_MAX) return;
  int code = kError;
  std::string message;
  if (rank == root) classify(local_error, code, message);
  int header[2] = {code, static_cast<int>(message.size())};
  MPI_Bcast(header, 2, MPI_INT, root, MPI_COMM_WORLD);
  message.resize(static_cast<std::size_t>(header[1]));
  if (header[1] > 0) MPI_Bcast(message.data(), header[1], MPI_CHAR, root, MPI_COMM_WORLD);
  switch (header[0]) {
    case kInvalidArgument: throw InvalidArgument(message);
    case kNumerical: throw NumericalError(message);
    case kIo: throw IoError(message);
    case kWrite: throw WriteError(message);
    default: throw Error(message);
  }
}

void collectively(const std::function<void()>& f) {
  std::exception_ptr error;
  try {
    f();
  } catch (...) {
    error = std::current_exception();
  }
  agree_on_errors(error);
}

void on_root(const std::function<void()>& f) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  collectively([&] {
    if (rank == 0) f();
  });
}

}  // namespace eqntk::parallel
