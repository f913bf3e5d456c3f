// eqntk_so3_bench: runs so3_bench_main() (tools/so3_bench.cpp). Usage: eqntk_so3_bench [SECONDS] (per case, default 1).
#include <cmath>

#include "tool_options.hpp"

int so3_bench_main(double seconds_per_case);

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  double seconds = 1.0;
  po::options_description flags = eqntk::tools::tool_flags();
  flags.add_options()("seconds", po::value(&seconds)->default_value(seconds)->notifier([](double s) {
    if (!(s > 0) || !std::isfinite(s)) throw po::error("--seconds must be positive and finite");
  }), "measuring time per case; may also be given bare, as the only argument");
  po::positional_options_description bare;
  bare.add("seconds", 1);
  eqntk::tools::parse_options("eqntk_so3_bench", flags, argc, argv,
                              "SO(3) pair-kernel throughput at L = 6, 8, 16 (tools/so3_bench.cpp).\n", &bare);
  return so3_bench_main(seconds);
}
