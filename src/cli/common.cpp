#include "common.hpp"

#include <mpi.h>

#include <cstdio>

#include "eqntk/blas_check.hpp"
#include "eqntk/build_info.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/parallel/gram_builder.hpp"
#include "eqntk/error.hpp"

extern "C" {
// Present when the BLAS behind ScaLAPACK is OpenBLAS (Debian's alternatives decide at run time).
char* openblas_get_config() __attribute__((weak));
}

namespace eqntk::cli {

std::string version_text() {
  std::string blas = openblas_get_config != nullptr ? std::string("OpenBLAS ") + openblas_get_config() + ", " +
                                                          eqntk::blas_core() + " kernels"
                                                    : "reference BLAS";
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string mpi_line(mpi, static_cast<std::size_t>(len));
  if (const auto nl = mpi_line.find('\n'); nl != std::string::npos) mpi_line.resize(nl);
  if (const auto comma = mpi_line.find(','); comma != std::string::npos) mpi_line.resize(comma);
  return std::string("eqntk ") + build::kVersion + "\n" + "git " + build::kGitSha + "\n" + "build " + build::kBuildType +
         ", " + build::kCompiler + "\n" + "blas " + blas + "\n" + "scalapack " + build::kScalapack + "\n" + "mpi " +
         mpi_line + "\n";
}

std::string help_text() {
  return "eqntk: NTK and NNGP Gram matrices of p4 group-convolutional networks and CNNs, distributed\n"
         "over MPI ranks, with infinite-width training dynamics solved by ScaLAPACK.\n\n"
         "Usage:\n"
         "  eqntk kernel --x1 A.npy [--x2 B.npy] --arch ARCH [--nngp K.npy] [--ntk T.npy]\n"
         "      Gram matrices of image files on one process.\n"
         "  mpirun -np P eqntk run --train-images A --train-labels B --test-images C --test-labels D\n"
         "      --arch ARCH --times inf,0.5,5 --kernel both --out DIR [--config run.ini] ...\n"
         "      Distributed kernels, predictions at every time t, metrics.json.\n"
         "  eqntk --version\n\n"
         "Run `eqntk kernel --help` or `eqntk run --help` for every option.\n"
         "Architectures (MATH.md §9): comma-separated layers name[:key=value]..., e.g.\n"
         "  lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense     (p4 GCNN)\n"
         "  conv:k=3:pad=same,relu,conv:k=3:pad=same,relu,gap,dense        (CNN)\n"
         "Layers: lift gconv conv (keys k=odd, pad=same|valid|circular, w=sigma_w, b=sigma_b), relu erf id,\n"
         "gpool gap flatten, dense (keys w, b).\n"
         "SO(3) networks on spherical signals (.npy coefficients or Driscoll-Healy samples) and molecules (XYZ):\n"
         "  s2lift:w=1:b=0,erf,so3conv,erf,so3pool,dense                   (layers s2lift so3conv so3pool, keys w b)\n"
         "  with --input-kind, --so3-grid, --band-limit, --molecule-sum, --slots, --channel-scale, --target-key.\n\n"
         "Exit codes: 0 success, 1 runtime failure, 2 bad usage or input, 3 interrupted (checkpoint saved).\n";
}

namespace detail {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

void print(const std::string& line) {
  if (world_rank() == 0) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

namespace {
int report(const std::string& message, int code) {
  if (world_rank() == 0) {
    std::fprintf(stderr, "eqntk: %s: %s\n", code == kExitInterrupted ? "interrupted" : "error", message.c_str());
    std::fflush(stderr);
  }
  return code;
}
}  // namespace

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const parallel::Interrupted& e) {
    return report(e.what(), kExitInterrupted);
  } catch (const InvalidArgument& e) {
    return report(e.what(), kExitUsage);
  } catch (const IoError& e) {
    return report(e.what(), kExitUsage);
  } catch (const Error& e) {
    return report(e.what(), kExitRuntime);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqntk: internal error on rank %d: %s\n", world_rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, kExitRuntime);
  }
  return kExitRuntime;
}

void parse_command_line(const std::vector<std::string>& args, const boost::program_options::options_description& desc,
                        boost::program_options::variables_map& vm) {
  namespace po = boost::program_options;
  try {
    po::store(po::command_line_parser(args).options(desc).positional({}).run(), vm);
  } catch (const po::error& e) {
    throw InvalidArgument(e.what());
  }
}

}  // namespace detail
}  // namespace eqntk::cli
