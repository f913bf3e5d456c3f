// Shared pieces of the subcommands. Private to src/cli.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <vector>

namespace eqntk::cli::detail {

/// MPI rank in MPI_COMM_WORLD.
int world_rank();
int world_size();

/// Runs `body` and maps what it throws to an exit code, printing one line `eqntk: error: ...` on rank 0
/// (InvalidArgument/IoError → 2, WriteError/NumericalError/Error → 1, parallel::Interrupted → 3). eqntk errors are
/// raised collectively (every rank throws the same); anything else is a bug and aborts the job.
int guarded(const std::function<int()>& body);

/// Parses `args` against `desc` (with `positional` none) into `vm`; throws InvalidArgument with Boost's
/// message (unknown option, missing value, bad number).
void parse_command_line(const std::vector<std::string>& args, const boost::program_options::options_description& desc,
                        boost::program_options::variables_map& vm);

/// Prints on rank 0 only.
void print(const std::string& line);

}  // namespace eqntk::cli::detail
