// eqntk_bench: throughput of the kernel engines (a benchmark, not a test).
//
// Default: NNGP+NTK of the standard network
//   lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense
// on 28×28×1 random images, one core. Prints nanoseconds per entry-layer of the fast path — an entry is
// one (t, t', Δ) element of the 4-block representation, a layer is one lift/gconv/conv layer, so a
// pair costs 4·(HW)²·L entry-layers — and the speedup over the reference path (16 blocks, explicit
// s-sum and q×q windows). The reference evaluates three recursions per pair (the pair and both
// self-pairs, for its variances); the fast path amortises the self part over a Gram matrix, so the
// reference's per-pair time is taken as one third of its evaluate() time (this favours the reference).
// Last line: ns_per_entry_layer=<x> speedup_vs_reference=<y>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>

#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/kernel/reference_kernel.hpp"

namespace {

using namespace eqntk::kernel;
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

struct Args {
  std::string arch = "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense";
  int size = 28;
  int channels = 1;
  double seconds = 3.0;
  bool reference = true;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "eqntk_bench: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--arch") a.arch = next();
    else if (k == "--size") a.size = std::stoi(next());
    else if (k == "--channels") a.channels = std::stoi(next());
    else if (k == "--seconds") a.seconds = std::stod(next());
    else if (k == "--no-reference") a.reference = false;
    else {
      std::printf("usage: eqntk_bench [--arch A] [--size HW] [--channels C] [--seconds S] [--no-reference]\n");
      std::exit(k == "--help" ? 0 : 2);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const Network net(Architecture::parse(args.arch), {args.channels, args.size, args.size});
  const Image x = random_image(net.input_shape(), 1), y = random_image(net.input_shape(), 2);
  PairKernel fast(net);
  const SelfChain sx = fast.self_chain(x.view()), sy = fast.self_chain(y.view());
  const double hw = static_cast<double>(args.size) * args.size;
  const double entry_layers = net.rotations() * hw * hw * net.spatial_linear_layers();

  // CPU time of this thread, best of several rounds: robust against a shared, noisy machine.
  KernelValue v{};
  int pairs = 0;
  double fast_pair = 1e300;
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < args.seconds || pairs < 5) {
    const double c0 = thread_seconds();
    v = fast.evaluate(x.view(), sx, y.view(), sy);
    fast_pair = std::min(fast_pair, thread_seconds() - c0);
    ++pairs;
  }
  const double ns = fast_pair * 1e9 / entry_layers;
  std::printf("arch %s on %dx%dx%d, %d rotation block(s), %d spatial layers\n", args.arch.c_str(), args.size, args.size,
              args.channels, net.rotations(), net.spatial_linear_layers());
  std::printf("fast path: best of %d pairs, %.3f ms per pair, %.3f ns per entry-layer (nngp %.12g ntk %.12g)\n", pairs,
              fast_pair * 1e3, ns, v.nngp, v.ntk);
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
