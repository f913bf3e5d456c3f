// eqntk: parse the subcommand, run it, and turn errors into exit codes (see cli/commands.hpp).
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "eqntk/blas_check.hpp"
#include "eqntk/cli/commands.hpp"

int main(int argc, char** argv) {
  // OpenBLAS falls back to generic kernels on CPUs it does not recognise; the solves (ScaLAPACK on top of
  // it) are then 4-5x slower. Re-execute with OPENBLAS_CORETYPE chosen from the CPU's features, before
  // MPI starts. A user-set OPENBLAS_CORETYPE is always respected.
  eqntk::reexec_with_better_blas_core(argv);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<std::string> args(argv + 1, argv + argc);
  int code = eqntk::cli::kExitOk;
  const std::string sub = args.empty() ? "" : args.front();
  if (sub == "--version" || sub == "version") {
    if (rank == 0) std::printf("%s", eqntk::cli::version_text().c_str());
  } else if (sub.empty() || sub == "--help" || sub == "-h" || sub == "help") {
    if (rank == 0) std::printf("%s", eqntk::cli::help_text().c_str());
    code = sub.empty() ? eqntk::cli::kExitUsage : eqntk::cli::kExitOk;
  } else if (sub == "kernel") {
    code = eqntk::cli::kernel_command({args.begin() + 1, args.end()});
  } else if (sub == "run") {
    code = eqntk::cli::run_command({args.begin() + 1, args.end()});
  } else if (sub == "plan") {
    code = eqntk::cli::plan_command({args.begin() + 1, args.end()});
  } else {
    if (rank == 0) std::fprintf(stderr, "eqntk: error: unknown command '%s' (expected kernel, run, plan, --help or --version)\n", sub.c_str());
    code = eqntk::cli::kExitUsage;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Finalize();
  return code;
}
