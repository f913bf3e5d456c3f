// `eqntk_bench --device gpu`: throughput of the OpenCL pair executor (src/gpu) against the CPU engine in
// the same run (a benchmark, not a test).
//
// Networks: the standard p4 network (3 × [3×3 same conv, relu], gpool, dense) on 28×28×1, and the
// neural-tangents README network (21 × [conv 3×3 same, relu], gap, dense) on 32×32×3. Pairs are all
// ordered pairs of a few random images, evaluated in one executor call (batches of many pairs per launch);
// the time per pair is the best wall time of a call over the measuring period divided by its pairs. Self
// chains are prepared beforehand (they are O(N), the pairs O(N²)). The CPU figures are the native engine
// on one core (best thread CPU time per pair) and on all cores (wall time of an OpenMP loop over pairs).
// Last line: device=<name> ns_per_entry_layer=<x> nt_ms_per_entry=<y> speedup_vs_core=<z>
// (name with spaces replaced by '_'; x, z for the p4 network).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eqntk/error.hpp"
#include "eqntk/gpu/pair_executor.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

int gpu_bench_main(double seconds, int gpu_index, int local_passes);

namespace {

using namespace eqntk::kernel;
using namespace eqntk::data;
using Clock = std::chrono::steady_clock;

double wall_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Figures {
  double gpu_pair = 0, core_pair = 0, all_pair = 0;  // seconds per pair
  int threads = 1;
  std::int64_t pairs = 0;
  double max_rel = 0;  // GPU vs CPU over the measured pairs
};

Figures measure(const Network& net, const eqntk::gpu::Device& device, double seconds) {
  const int n_images = 6;
  std::vector<Image> images;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  const InputShape s = net.input_shape();
  for (int i = 0; i < n_images; ++i) {
    Image im{s, std::vector<double>(static_cast<std::size_t>(s.channels * s.height * s.width))};
    for (double& v : im.pixels) v = normal(rng);
    images.push_back(std::move(im));
  }
  PairKernel cpu(net);
  std::vector<SelfChain> chains;
  for (const Image& im : images) chains.push_back(cpu.self_chain(im.view()));
  std::vector<eqntk::gpu::PairRef> all;
  for (int i = 0; i < n_images; ++i)
    for (int j = 0; j < n_images; ++j)
      all.push_back({images[static_cast<std::size_t>(i)].view(), &chains[static_cast<std::size_t>(i)],
                     images[static_cast<std::size_t>(j)].view(), &chains[static_cast<std::size_t>(j)]});
  Figures f;
  // CPU, one core: best thread time of one pair.
  KernelValue ref{};
  {
    double best = 1e300;
    const auto t0 = Clock::now();
    for (int r = 0; r < 3 || wall_since(t0) < seconds / 4; ++r) {
      const double c0 = thread_seconds();
      ref = cpu.evaluate(all[1].x, *all[1].sx, all[1].x2, *all[1].sx2);
      best = std::min(best, thread_seconds() - c0);
    }
    f.core_pair = best;
  }
  // CPU, all cores: an OpenMP loop over the pairs.
  {
    f.threads = omp_get_max_threads();
    std::vector<std::unique_ptr<PairKernel>> engines;
    for (int t = 0; t < f.threads; ++t) engines.push_back(std::make_unique<PairKernel>(net));
    const auto n = static_cast<std::int64_t>(std::max<std::size_t>(static_cast<std::size_t>(f.threads), 2 * static_cast<std::size_t>(f.threads)));
    double best = 1e300;
    const auto t0 = Clock::now();
    for (int r = 0; r < 1 || wall_since(t0) < seconds / 4; ++r) {
      const auto c0 = Clock::now();
#pragma omp parallel for schedule(dynamic, 1)
      for (std::int64_t p = 0; p < n; ++p) {
        const auto& pr = all[static_cast<std::size_t>(p) % all.size()];
        (void)engines[static_cast<std::size_t>(omp_get_thread_num())]->evaluate(pr.x, *pr.sx, pr.x2, *pr.sx2);
      }
      best = std::min(best, wall_since(c0) / static_cast<double>(n));
    }
    f.all_pair = best;
  }
  // Device: a first call (program warm-up, buffer allocation) of a few pairs estimates the rate; the
  // measured calls then take as many pairs as fit in ~1/4 of the period (at most one batch, all pairs).
  eqntk::gpu::PairExecutor exec(net, device);
  const auto c0 = Clock::now();
  (void)exec.evaluate(std::span(all.data(), 2));
  const double per_pair = wall_since(c0) / 2;
  const auto want = static_cast<std::int64_t>(seconds / 4 / std::max(per_pair, 1e-9));
  f.pairs = std::clamp<std::int64_t>(want, 2, std::min<std::int64_t>(exec.batch(), static_cast<std::int64_t>(all.size())));
  const std::span<const eqntk::gpu::PairRef> batch(all.data(), static_cast<std::size_t>(f.pairs));
  double best = 1e300;
  const auto t1 = Clock::now();
  std::vector<KernelValue> got;
  for (int r = 0; r < 2 || wall_since(t1) < seconds / 2; ++r) {
    const auto c1 = Clock::now();
    got = exec.evaluate(batch);
    best = std::min(best, wall_since(c1) / static_cast<double>(f.pairs));
  }
  f.gpu_pair = best;
  for (std::size_t p = 0; p < got.size(); ++p) {
    const KernelValue c = cpu.evaluate(all[p].x, *all[p].sx, all[p].x2, *all[p].sx2);
    f.max_rel = std::max({f.max_rel, std::abs(got[p].nngp - c.nngp) / std::abs(c.nngp),
                          std::abs(got[p].ntk - c.ntk) / std::abs(c.ntk)});
  }
  return f;
}

std::string nt_arch() {
  std::string a;
  for (int i = 0; i < 21; ++i) a += "conv:k=3:pad=same,relu,";
  return a + "gap,dense";
}

}  // namespace

int gpu_bench_main(double seconds, int gpu_index, int local_passes) {
  try {
    eqntk::gpu::DeviceOptions options;
    options.index = gpu_index;
    options.local_passes = local_passes;
    const eqntk::gpu::Device device(options);
    const auto& info = device.info();
    const bool marching = local_passes < 0 ? info.dedicated_local : local_passes > 0;
    std::printf("device: %s (platform %s), %.1f GiB global memory, %.0f KiB %s local memory; window passes %s\n",
                info.name.c_str(), info.platform.c_str(), static_cast<double>(info.global_mem) / (1 << 30),
                static_cast<double>(info.local_mem) / 1024, info.dedicated_local ? "dedicated" : "emulated",
                marching ? "through local memory" : "reading global memory");
    // The p4 network's tiles at 28×28: 9 outputs along the window's trailing dim (a ring of 3 planes).
    const auto w = eqntk::gpu::PairExecutor::work_per_entry_layer(3, marching ? 9 : 0);
    std::printf("device kernels: %.0f flops and %.0f bytes of global memory per entry-layer (k=3, dual activation "
                "excluded, no cache reuse)\n",
                w.flops, w.bytes);
    const std::string c = ":k=3:pad=same";
    const Network p4(Architecture::parse("lift" + c + ",relu,gconv" + c + ",relu,gconv" + c + ",relu,gpool,dense"),
                     {1, 28, 28});
    const double p4_entry_layers = 4.0 * 784.0 * 784.0 * p4.spatial_linear_layers();
    const Figures a = measure(p4, device, seconds);
    const double ns = a.gpu_pair * 1e9 / p4_entry_layers;
    std::printf("p4 network 28x28: device %.3f ms per pair = %.4f ns per entry-layer (%lld pairs per call, max rel. "
                "difference to the CPU engine %.1e); CPU one core %.3f ns, %d cores %.3f ns per entry-layer\n",
                a.gpu_pair * 1e3, ns, static_cast<long long>(a.pairs), a.max_rel, a.core_pair * 1e9 / p4_entry_layers,
                a.threads, a.all_pair * 1e9 / p4_entry_layers);
    std::printf("p4 network: device vs one core %.2fx, vs %d cores %.2fx; device %.1f GFLOP/s, %.1f GB/s\n",
                a.core_pair / a.gpu_pair, a.threads, a.all_pair / a.gpu_pair, w.flops / ns, w.bytes / ns);
    const Network nt(Architecture::parse(nt_arch()), {3, 32, 32});
    const Figures b = measure(nt, device, seconds);
    std::printf("neural-tangents network 32x32x3: device %.2f ms per entry (%lld pairs per call, max rel. difference "
                "%.1e); CPU one core %.2f ms, %d cores %.2f ms; device vs one core %.2fx, vs %d cores %.2fx "
                "(neural-tangents on a V100: 6.21 ms)\n",
                b.gpu_pair * 1e3, static_cast<long long>(b.pairs), b.max_rel, b.core_pair * 1e3, b.threads,
                b.all_pair * 1e3, b.core_pair / b.gpu_pair, b.threads, b.all_pair / b.gpu_pair);
    std::string name = info.name;
    std::replace(name.begin(), name.end(), ' ', '_');
    std::printf("device=%s ns_per_entry_layer=%.4f nt_ms_per_entry=%.3f speedup_vs_core=%.2f\n", name.c_str(), ns,
                b.gpu_pair * 1e3, a.core_pair / a.gpu_pair);
    return 0;
  } catch (const eqntk::Error& e) {
    std::fprintf(stderr, "eqntk_bench: error: %s\n", e.what());
    return 1;
  }
}
