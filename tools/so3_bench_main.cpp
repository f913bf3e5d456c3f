// eqntk_so3_bench: runs so3_bench_main() (tools/so3_bench.cpp). Usage: eqntk_so3_bench [seconds per case]
#include <cstdlib>

int so3_bench_main(double seconds_per_case);

int main(int argc, char** argv) { return so3_bench_main(argc > 1 ? std::atof(argv[1]) : 1.0); }
