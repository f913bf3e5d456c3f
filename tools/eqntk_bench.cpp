// eqntk_bench: throughput of the kernel engines (a benchmark, not a test). Times are the best per-pair
// CPU time of this thread over the measuring period, robust against a shared, noisy machine.
//
// Default: NNGP+NTK of the standard network
//   lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense
// on 28×28×1 random images, one core. An entry is one (t, t', Δ) element of the 4-block representation,
// a layer is one lift/gconv/conv layer, so a pair costs 4·(HW)²·L entry-layers. Prints ns per
// entry-layer of the fast path and its speedup over the reference path (16 blocks, explicit s-sum and
// q×q windows). The reference evaluates three recursions per pair (the pair and both self-pairs, for
// its variances); the fast path amortises the self part over a Gram matrix, so the reference's per-pair
// time is taken as one third of its evaluate() time (this favours the reference).
// It also measures, in the same run, this core's double-precision peak (a 1024³ DGEMM of the BLAS) and
// memory bandwidth (a STREAM triad over 3×128 MB), and states the fast path's share of each from a
// documented count of flops and bytes per entry-layer (see `work_per_entry_layer`).
// Last line: ns_per_entry_layer=<x> speedup_vs_reference=<y>
//
// --k5: the same at k = 5 (the speedup must grow with q²: the fast path's window sums cost O(q), the
//       reference's O(q²)); --nt-benchmark: the neural-tangents README network (21 × [conv 3×3 same,
//       relu], global average pooling, dense on 32×32×3), last line ms_per_entry=<t>; --so3: the SO(3)
//       pair kernels at L = 6, 8, 16 (tools/so3_bench.cpp); --mixed: also Precision::mixed (float32
//       storage), its speedup over float64 in the same run and its kernel error on 8 pairs;
//       --device gpu [--gpu-index I] [--gpu-local-passes 0|1]: the OpenCL executor against the CPU engine
//       (tools/gpu_bench.cpp; window passes through local memory or not, default: the device's choice).
// --group G: the standard network with lift:group=G (C1 C2 C4 D1 D2 D4, p4, p4m).
// --myrtle (with --group G, default p4m): the cost of a point group other than p4 and of the Myrtle-style
//       pooled network of MATH.md §10,
//         lift:k=3:group=G,relu,gconv:k=3,relu,avgpool:s=2,gconv:k=3,relu,avgpool:s=2,gconv:k=3,relu,gpool,dense
//       on 32×32×3. Last line: p4m_over_p4=<per-pair time of the standard layers with group G over p4, 28×28>
//       myrtle_ms_per_pair=<fast path, 32×32×3> speedup_vs_reference=<reference per pair recursion over the
//       fast path, both on the Myrtle network at 16×16×3: the reference's |G|² label blocks of a 32×32 state
//       would take 8 GB>.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "eqntk/blas_check.hpp"
#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/kernel/plan.hpp"
#include "eqntk/kernel/reference_kernel.hpp"
#include "tool_options.hpp"

extern "C" void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                       const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                       const int* ldc);
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
int so3_bench_main(double seconds_per_case);
int gpu_bench_main(double seconds, int gpu_index, int local_passes);  // tools/gpu_bench.cpp

namespace {

using namespace eqntk::kernel;
using namespace eqntk::data;
using Clock = std::chrono::steady_clock;

double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

Image random_image(InputShape s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Image im{s, std::vector<double>(static_cast<std::size_t>(s.channels * s.height * s.width))};
  for (double& v : im.pixels) v = normal(rng);
  return im;
}

std::string standard_arch(int k) {
  const std::string c = ":k=" + std::to_string(k) + ":pad=same";
  return "lift" + c + ",relu,gconv" + c + ",relu,gconv" + c + ",relu,gpool,dense";
}

std::string nt_arch() {
  std::string a;
  for (int i = 0; i < 21; ++i) a += "conv:k=3:pad=same,relu,";
  return a + "gap,dense";
}

struct Args {
  std::string arch = standard_arch(3);
  int size = 28;
  int channels = 1;
  double seconds = 3.0;
  bool reference = true;
  bool machine = true;
  bool nt = false;
  bool so3 = false;
  bool mixed = false;
  bool gpu = false;
  int gpu_index = -1;
  int gpu_local_passes = -1;  // DeviceOptions::local_passes
  bool myrtle = false;
  std::string group = "C4";
};

// `arch` with `:group=<g>` appended to its lift token.
std::string with_group(const std::string& arch, const std::string& g) {
  const std::size_t comma = arch.find(',');
  return arch.substr(0, comma) + ":group=" + g + arch.substr(comma);
}

std::string myrtle_arch(const std::string& g) {
  return "lift:k=3:group=" + g +
         ",relu,gconv:k=3,relu,avgpool:s=2,gconv:k=3,relu,avgpool:s=2,gconv:k=3,relu,gpool,dense";
}

// The flags are described in the header. --nt-benchmark sets the architecture, size and channels that are not
// given explicitly (by --arch or --k5, --size, --channels).
Args parse(int argc, char** argv) {
  namespace po = boost::program_options;
  using eqntk::tools::at_least;
  using eqntk::tools::defaulted;
  Args a;
  bool k5 = false, no_reference = false, no_machine = false;
  po::options_description flags = eqntk::tools::tool_flags();
  flags.add_options()
      ("arch", defaulted(&a.arch), "architecture")
      ("size", defaulted(&a.size)->notifier(at_least("--size", 1)), "image height = width")
      ("channels", defaulted(&a.channels)->notifier(at_least("--channels", 1)), "channels")
      ("seconds", defaulted(&a.seconds), "measuring time per case")
      ("k5", po::bool_switch(&k5), "the standard network at k = 5")
      ("nt-benchmark", po::bool_switch(&a.nt), "the neural-tangents README network on 32x32x3, no reference")
      ("so3", po::bool_switch(&a.so3), "the SO(3) pair kernels (tools/so3_bench.cpp)")
      ("mixed", po::bool_switch(&a.mixed), "also Precision::mixed (float32 storage)")
      ("no-reference", po::bool_switch(&no_reference), "skip the direct reference path")
      ("no-machine", po::bool_switch(&no_machine), "skip the DGEMM and STREAM measurements")
      ("device", po::value<std::string>()->default_value("cpu")->notifier([&a](const std::string& v) {
         if (v != "cpu" && v != "gpu") throw po::error("--device must be cpu or gpu, got '" + v + "'");
         a.gpu = v == "gpu";
       }), "cpu, or gpu: the OpenCL executor against the CPU engine (tools/gpu_bench.cpp)")
      ("gpu-index", defaulted(&a.gpu_index), "OpenCL device; < 0: local rank mod count")
      ("gpu-local-passes", po::value(&a.gpu_local_passes)->notifier([](int v) {
         if (v != 0 && v != 1) throw po::error("--gpu-local-passes must be 0 or 1, got " + std::to_string(v));
       }), "window passes through local memory (1) or not (0); default: the device's choice")
      ("group", defaulted(&a.group), "point group of the lift (C1 C2 C4 D1 D2 D4, p4, p4m)")
      ("myrtle", po::bool_switch(&a.myrtle), "point group cost and the Myrtle-style network (--group, default p4m)");
  const po::variables_map vm = eqntk::tools::parse_options("eqntk_bench", flags, argc, argv,
                                                           "Kernel engine throughput (tools/eqntk_bench.cpp).\n");
  if (k5 && eqntk::tools::given(vm, "arch"))
    eqntk::tools::usage_error("eqntk_bench", "--k5 and --arch both give the architecture");
  if (k5) a.arch = standard_arch(5);
  if (a.nt) {
    if (!k5 && !eqntk::tools::given(vm, "arch")) a.arch = nt_arch();
    if (!eqntk::tools::given(vm, "size")) a.size = 32;
    if (!eqntk::tools::given(vm, "channels")) a.channels = 3;
  }
  a.reference = !no_reference && !a.nt;
  a.machine = !no_machine;
  return a;
}

// Best single-core DGEMM rate in GFLOP/s (the BLAS's own peak on this core).
double dgemm_gflops(double seconds) {
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  const int n = 1024;
  std::vector<double> a(static_cast<std::size_t>(n) * n, 1.0 / n), b(a), c(a.size(), 0.0);
  const double one = 1.0, zero = 0.0;
  double best = 1e300;
  const auto t0 = Clock::now();
  for (int r = 0; r < 3 || std::chrono::duration<double>(Clock::now() - t0).count() < seconds; ++r) {
    const double s = thread_seconds();
    dgemm_("N", "N", &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n);
    best = std::min(best, thread_seconds() - s);
  }
  return 2.0 * n * static_cast<double>(n) * n / best / 1e9;
}

// Best STREAM-triad bandwidth in GB/s (a[i] = b[i] + s·c[i]: 24 bytes per element).
double triad_gbs(double seconds) {
  const std::size_t n = 16u << 20;  // 128 MB per array
  std::vector<double> a(n, 0.0), b(n, 1.0), c(n, 2.0);
  double best = 1e300;
  const auto t0 = Clock::now();
  for (int r = 0; r < 3 || std::chrono::duration<double>(Clock::now() - t0).count() < seconds; ++r) {
    const double s = thread_seconds();
    for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + 3.0 * c[i];
    best = std::min(best, thread_seconds() - s);
  }
  if (a[n / 2] != 7.0) std::printf("triad check failed\n");
  return 24.0 * static_cast<double>(n) / best / 1e9;
}

// Useful work of one entry-layer of a conv-type layer followed by relu, counted from the algorithm:
// K and Θ each take two window passes of q terms (2q flops each: multiply-add) → 8q flops; Θ' adds K'
// (1 flop); the relu dual costs about 40 flops (ρ, the square roots by Newton steps, the degree-12 acos
// polynomial, Σ and Σ̇⊙Θ). Bytes: the layer reads its input block (K, Θ: 16 B) and writes its output
// (16 B) once; the in-place activation reads and writes them once more (32 B): 64 B per entry-layer.
struct Work {
  double flops, bytes;
};
Work work_per_entry_layer(int q) { return {8.0 * q + 1.0 + 40.0, 64.0}; }

double bench_fast(const Network& net, const Image& x, const Image& y, double seconds, KernelValue& v,
                  Precision precision = Precision::float64) {
  PairKernel fast(net, precision);
  const SelfChain sx = fast.self_chain(x.view()), sy = fast.self_chain(y.view());
  int pairs = 0;
  double best = 1e300;
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds || pairs < 5) {
    const double c0 = thread_seconds();
    v = fast.evaluate(x.view(), sx, y.view(), sy);
    best = std::min(best, thread_seconds() - c0);
    ++pairs;
  }
  return best;
}

// --myrtle: see the header.
int myrtle_main(const Args& args) {
  const std::string g = args.group == "C4" ? "p4m" : args.group;
  if (!eqntk::group::from_name(g)) {
    std::fprintf(stderr, "eqntk_bench: unknown group '%s'\n", g.c_str());
    return 2;
  }
  KernelValue v{};
  const Network p4(Architecture::parse(standard_arch(3)), {1, 28, 28});
  const Network pg(Architecture::parse(with_group(standard_arch(3), g)), {1, 28, 28});
  const Image a = random_image(p4.input_shape(), 1), b = random_image(p4.input_shape(), 2);
  const double t_p4 = bench_fast(p4, a, b, args.seconds, v);
  const double t_g = bench_fast(pg, a, b, args.seconds, v);
  std::printf("standard layers on 28x28x1: p4 %.3f ms per pair (%d blocks), %s %.3f ms per pair (%d blocks)\n",
              t_p4 * 1e3, p4.rotations(), g.c_str(), t_g * 1e3, pg.rotations());
  const Network myrtle(Architecture::parse(myrtle_arch(g)), {3, 32, 32});
  const Image x = random_image(myrtle.input_shape(), 3), y = random_image(myrtle.input_shape(), 4);
  const double t_m = bench_fast(myrtle, x, y, args.seconds, v);
  std::printf("Myrtle-style %s network on 32x32x3: %.3f ms per pair (nngp %.12g ntk %.12g)\n", g.c_str(), t_m * 1e3,
              v.nngp, v.ntk);
  const Network small(Architecture::parse(myrtle_arch(g)), {3, 16, 16});
  const Image xs = random_image(small.input_shape(), 5), ys = random_image(small.input_shape(), 6);
  const double t_small = bench_fast(small, xs, ys, args.seconds, v);
  const ReferenceKernel ref(small);
  const double r0 = thread_seconds();
  const KernelValue rv = ref.evaluate(xs.view(), ys.view());
  const double ref_pair = (thread_seconds() - r0) / 3.0;
  std::printf("Myrtle-style network on 16x16x3: fast %.3f ms per pair, reference %.3f s per pair recursion; "
              "agreement |dK|/K %.2e |dTheta|/Theta %.2e\n",
              t_small * 1e3, ref_pair, std::abs(rv.nngp - v.nngp) / std::abs(rv.nngp),
              std::abs(rv.ntk - v.ntk) / std::abs(rv.ntk));
  std::printf("p4m_over_p4=%.3f myrtle_ms_per_pair=%.3f speedup_vs_reference=%.1f\n", t_g / t_p4, t_m * 1e3,
              ref_pair / t_small);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  eqntk::reexec_with_better_blas_core(argv);  // the DGEMM peak must be the CPU's, not a generic kernel's
  const Args args = parse(argc, argv);
  if (args.so3) return so3_bench_main(args.seconds / 3);
  if (args.gpu) return gpu_bench_main(args.seconds, args.gpu_index, args.gpu_local_passes);
  if (args.myrtle) return myrtle_main(args);
  const std::string arch = args.group == "C4" ? args.arch : with_group(args.arch, args.group);
  const Network net(Architecture::parse(arch), {args.channels, args.size, args.size});
  const Image x = random_image(net.input_shape(), 1), y = random_image(net.input_shape(), 2);
  const double hw = static_cast<double>(args.size) * args.size;
  const int layers = compile(net).linear_units();
  const double entry_layers = net.rotations() * hw * hw * layers;
  std::printf("arch %s on %dx%dx%d, %d rotation block(s), %d spatial layers\n", arch.c_str(), args.size, args.size,
              args.channels, net.rotations(), layers);

  KernelValue v{};
  const double fast_pair = bench_fast(net, x, y, args.seconds, v);
  const double ns = fast_pair * 1e9 / entry_layers;
  std::printf("fast path: %.3f ms per pair, %.3f ns per entry-layer (nngp %.12g ntk %.12g)\n", fast_pair * 1e3, ns,
              v.nngp, v.ntk);
  if (args.machine) {
    int q = 1;
    for (const auto& st : net.stages())
      if (is_spatial_linear(st.spec.kind)) q = st.q;
    const Work w = work_per_entry_layer(q);
    const double gflops = dgemm_gflops(1.0), gbs = triad_gbs(1.0);
    std::printf("machine: DGEMM %.1f GFLOP/s (OpenBLAS %s kernels), STREAM triad %.1f GB/s (one core, same run)\n",
                gflops, eqntk::blas_core().c_str(), gbs);
    std::printf("fast path: %.1f GFLOP/s = %.0f%% of DGEMM peak, %.1f GB/s = %.0f%% of triad bandwidth "
                "(%.0f flops, %.0f bytes per entry-layer)\n",
                w.flops / ns, 100 * w.flops / ns / gflops, w.bytes / ns, 100 * w.bytes / ns / gbs, w.flops, w.bytes);
  }
  if (args.mixed) {
    KernelValue vm{};
    const double mixed_pair = bench_fast(net, x, y, args.seconds, vm, Precision::mixed);
    double err_k = 0, err_t = 0;
    PairKernel f64(net), f32(net, Precision::mixed);
    for (int p = 0; p < 8; ++p) {
      const Image a = random_image(net.input_shape(), 100 + p), b = random_image(net.input_shape(), 200 + p);
      const auto sa = f64.self_chain(a.view()), sb = f64.self_chain(b.view());
      const KernelValue r = f64.evaluate(a.view(), sa, b.view(), sb), m = f32.evaluate(a.view(), sa, b.view(), sb);
      err_k = std::max(err_k, std::abs(m.nngp - r.nngp) / std::abs(r.nngp));
      err_t = std::max(err_t, std::abs(m.ntk - r.ntk) / std::abs(r.ntk));
    }
    std::printf("mixed precision (float32 storage, float64 arithmetic): %.3f ms per pair, %.3f ns per entry-layer, "
                "%.2fx float64; max relative error over 8 pairs: nngp %.2e ntk %.2e\n",
                mixed_pair * 1e3, mixed_pair * 1e9 / entry_layers, fast_pair / mixed_pair, err_k, err_t);
  }
  if (args.nt) {
    std::printf("neural-tangents README network: %.1f ms per kernel entry (NNGP+NTK, float64, one core); "
                "neural-tangents publishes 258.55 ms on a >56-core CPU and 6.21 ms on a V100\n",
                fast_pair * 1e3);
    std::printf("ms_per_entry=%.2f\n", fast_pair * 1e3);
    return 0;
  }
  double speedup = std::nan("");
  if (args.reference) {
    const ReferenceKernel ref(net);
    const double r0 = thread_seconds();
    const KernelValue rv = ref.evaluate(x.view(), y.view());
    const double ref_eval = thread_seconds() - r0;
    const double ref_pair = ref_eval / 3.0;
    speedup = ref_pair / fast_pair;
    std::printf("reference path: %.3f s per evaluate (3 recursions), %.3f s per pair recursion; "
                "agreement |dK|/K %.2e |dTheta|/Theta %.2e\n",
                ref_eval, ref_pair, std::abs(rv.nngp - v.nngp) / std::abs(rv.nngp), std::abs(rv.ntk - v.ntk) / std::abs(rv.ntk));
  }
  std::printf("ns_per_entry_layer=%.3f speedup_vs_reference=%.1f\n", ns, speedup);
  return 0;
}
