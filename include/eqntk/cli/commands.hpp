// The `eqntk` subcommands. Each parses its arguments, validates everything before heavy work, runs,
// and returns the process exit code: 0 success, 2 usage/configuration/input error, 1 runtime failure,
// 3 interrupted by a signal with the checkpoint flushed (rerun to resume).
// Every function is collective over MPI_COMM_WORLD and returns the same code on every rank; only rank 0
// prints results and the one-line error message.
#pragma once

#include <string>
#include <vector>

namespace eqntk::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 3;

/// `eqntk kernel`: NNGP/NTK Gram matrices of one or two image files (single process; rank 0 works).
int kernel_command(const std::vector<std::string>& args);

/// `eqntk run`: distributed Gram matrices and training dynamics (the main job).
int run_command(const std::vector<std::string>& args);

/// `eqntk plan`: the arguments of `eqntk run` (and --ranks), no kernel build: pairs, tiles, per-rank
/// memory, ScaLAPACK workspace, checkpoint size and a calibrated estimate of core-hours and wall time.
int plan_command(const std::vector<std::string>& args);

/// `eqntk --version` text: version, git SHA, build type, compiler, BLAS/ScaLAPACK, MPI.
std::string version_text();

/// Top-level help listing the subcommands.
std::string help_text();

}  // namespace eqntk::cli
