// eqntk error types. Library code throws these; only main() turns them into exit codes
// (2: usage/config/input validation, 1: runtime failure).
#pragma once

#include <stdexcept>
#include <string>

namespace eqntk {

/// Base of every error eqntk throws. what() is one line meant for the user.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A user-supplied value (architecture string, flag, shape, file content) is invalid.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// A numerical failure: non-PSD or singular matrix, NaN/Inf in data or results.
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// A file given as input could not be read or parsed, or an output location is unusable before any work
/// (a bad --out, an unwritable directory): bad usage or input, exit 2.
class IoError : public Error {
 public:
  using Error::Error;
};

/// Writing an output or checkpoint failed while the job ran (disk full, quota, file-size limit, a vanished
/// directory): a runtime failure, exit 1, though it is an I/O error.
class WriteError : public IoError {
 public:
  using IoError::IoError;
};

}  // namespace eqntk
