// eqntk_mc: Monte Carlo convergence of finite-width networks to the analytic kernels (MATH.md §8).
//
// For every width n in --widths, draws --inits independent initializations of the finite network of
// MATH.md §2 (eqntk/finite/network.hpp) and evaluates, on a fixed set of input pairs, each network's
//   empirical NTK   Θ_i = Σ_θ ∂f(x)/∂θ ∂f(x')/∂θ,
//   empirical NNGP  K_i = f(x) f(x'),
//   conditional NNGP K̃_i = E[f(x) f(x') | all but the last layer] = σ_w²⟨h(x), h(x')⟩/n + σ_b² (then the dual of a
//                    trailing nonlinearity), h the features entering the last dense layer,
// against the analytic Θ, K of kernel::PairKernel. With d_ia = v_ia/v_a − 1 (init i, pair a, v the analytic
// value), it prints per width and kernel
//   spread  √(mean_a mean_i d_ia²)                  (MATH §8: √(mean_i (Θ_i − Θ)²)/|Θ|, RMS over pairs),
//   err     mean_a |mean_i d_ia|  with a bootstrap 95 % interval (inits resampled, the same draw for all pairs),
//   bias    mean_i mean_a d_ia ± its standard error (signed: the finite-width bias shows as > 0),
//   zmax    max_a |mean_i d_ia| / SE_a               (the analytic value is within zmax standard errors),
// then a weighted fit bias(n) = a + b/n over the widths (a should vanish: the analytic kernel is the n → ∞
// limit), and the least-squares slope of log spread against log n with a bootstrap standard error.
//
// The spread of the NTK and of the conditional NNGP falls like n^(−1/2). The spread of f(x)f(x') does not:
// at infinite width (f(x), f(x')) is Gaussian with covariance [[q1,c],[c,q2]], so f(x)f(x') keeps the
// variance q1q2 + c² at every width; only its mean converges. Hence slope_nngp on the last line is the
// slope of the conditional NNGP (which has the same mean as f(x)f(x')); the f(x)f(x') slope is printed
// as slope_nngp_ff on the line before. For the same reason, when the architecture ends with a nonlinearity
// after its last dense layer, the empirical NTK carries the O(1) random factor φ'(F(x))φ'(F(x')) and its spread
// does not fall either (its mean still converges).
//
// Cost: one forward and backward pass per image and initialization, O(width²·fan-in pixels) for each gconv;
// all initializations run in parallel (--threads). The matrix products use Eigen at the build's instruction
// set: configure with -DEQNTK_NATIVE=ON (x86-64-v3) for a cluster run.
//
// Last line: slope_ntk=<s> slope_nngp=<s> rel_err_ntk_max_width=<e>  (e = the NTK's err at the largest width).
#include <omp.h>

#include <boost/lexical_cast.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/finite/network.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "input_check.hpp"
#include "tool_options.hpp"

namespace {

using eqntk::kernel::Architecture;
using eqntk::data::ImageSet;
using eqntk::data::InputShape;
using eqntk::kernel::Network;
using Clock = std::chrono::steady_clock;
namespace po = boost::program_options;

constexpr const char* kNotes =
    "Monte Carlo convergence of finite-width networks to the analytic kernels (MATH.md §8, tools/README_mc.md).\n";

struct Args {
  std::string arch = "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense";
  std::int64_t size = 5;
  std::int64_t channels = 1;
  std::vector<std::int64_t> widths;  // --widths
  std::int64_t inits = 128;
  std::int64_t pairs = 6;
  std::string images = "blobs";
  std::string data;
  std::uint64_t seed = 1;
  int threads = 0;  // 0: OpenMP's maximum
  std::int64_t bootstrap = 2000;
};

// --widths: comma-separated integers >= 1, at least two and no repeats; sorted.
std::vector<std::int64_t> parse_widths(const std::string& text) {
  std::vector<std::int64_t> widths;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    std::int64_t w = 0;
    if (!boost::conversion::try_lexical_convert(item, w))
      throw po::error("--widths needs integers, got '" + item + "'");
    eqntk::tools::at_least("--widths", 1)(w);
    widths.push_back(w);
  }
  if (widths.size() < 2) throw po::error("--widths needs at least two widths for the fits");
  std::sort(widths.begin(), widths.end());
  if (std::adjacent_find(widths.begin(), widths.end()) != widths.end()) throw po::error("--widths repeats a width");
  return widths;
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::int64_t seed = 1;
  using eqntk::tools::at_least;
  using eqntk::tools::defaulted;
  po::options_description flags = eqntk::tools::tool_flags();
  flags.add_options()
      ("arch", defaulted(&a.arch), "architecture string (MATH.md §9); default the authors' notebook network")
      ("size", defaulted(&a.size)->notifier(at_least("--size", 1)), "image height = width")
      ("channels", defaulted(&a.channels)->notifier(at_least("--channels", 1)),
       "image channels")
      ("widths", po::value<std::string>()->default_value("16,32,64,128,256,512")->notifier([&a](const std::string& v) {
         a.widths = parse_widths(v);
       }), "comma-separated widths, powers of two by convention")
      ("inits", defaulted(&a.inits)->notifier(at_least("--inits", 2)),
       "independent initializations per width")
      ("pairs", defaulted(&a.pairs)->notifier(at_least("--pairs", 1)),
       "number of input pairs P: the first P of (x0,x0), (x0,x1), (x1,x1), (x0,x2), (x1,x2), (x2,x2), ... on the "
       "fewest images m with m(m+1)/2 >= P (every image costs one backward pass)")
      ("images", defaulted(&a.images)->notifier([](const std::string& v) {
         if (v != "blobs" && v != "gauss") throw po::error("--images must be blobs or gauss, got '" + v + "'");
       }), "blobs: Fashion-MNIST-like (a bright garment-like blob on a zero background, pixels in [0,1]); "
           "gauss: iid N(0,1) pixels")
      ("data", po::value(&a.data),
       "take the first m images of an .npy/IDX file (NHWC or N,H,W), average-pooled down to --size")
      ("seed", defaulted(&seed)->notifier(at_least("--seed", 0)), "base seed")
      ("threads", po::value(&a.threads)->notifier(at_least("--threads", 1)), "threads (default: OpenMP's maximum)")
      ("bootstrap", defaulted(&a.bootstrap)->notifier(at_least("--bootstrap", 10)),
       "bootstrap resamples");
  eqntk::tools::parse_options("eqntk_mc", flags, argc, argv, kNotes);
  a.seed = static_cast<std::uint64_t>(seed);
  return a;
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Fashion-MNIST-like images: a garment-like blob (an ellipse with a random aspect, centre offset and a
// bright, slightly textured fill that fades at its edge) on an exactly zero background, pixels in [0, 1].
ImageSet synthetic_images(InputShape shape, std::int64_t count, const std::string& kind, std::uint64_t seed) {
  ImageSet set{shape, count,
               std::vector<double>(static_cast<std::size_t>(count * shape.channels * shape.height * shape.width))};
  std::mt19937_64 gen(mix(seed ^ 0x1A2B3C4DULL));
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  for (std::int64_t n = 0; n < count; ++n) {
    double* x = set.pixels.data() + n * set.image_size();
    if (kind == "gauss") {
      for (std::int64_t k = 0; k < set.image_size(); ++k) x[k] = normal(gen);
      continue;
    }
    const double h = static_cast<double>(shape.height), w = static_cast<double>(shape.width);
    const double ci = (h - 1) / 2 + (uni(gen) - 0.5) * 0.2 * h, cj = (w - 1) / 2 + (uni(gen) - 0.5) * 0.2 * w;
    const double ri = (0.25 + 0.2 * uni(gen)) * h, rj = (0.2 + 0.2 * uni(gen)) * w;
    for (std::int64_t c = 0; c < shape.channels; ++c) {
      const double level = 0.5 + 0.5 * uni(gen);
      for (std::int64_t i = 0; i < shape.height; ++i)
        for (std::int64_t j = 0; j < shape.width; ++j) {
          const double di = (static_cast<double>(i) - ci) / ri, dj = (static_cast<double>(j) - cj) / rj;
          const double r2 = di * di + dj * dj;
          const double v = r2 < 1.0 ? level * (1.0 - 0.5 * r2) * (0.8 + 0.2 * uni(gen)) : 0.0;
          x[(c * shape.height + i) * shape.width + j] = std::clamp(v, 0.0, 1.0);
        }
    }
  }
  return set;
}

// The first `count` images of a file, average-pooled by the integer factor that brings them to size×size.
ImageSet file_images(const std::string& path, std::int64_t size, std::int64_t count) {
  const ImageSet all = eqntk::io::load_images(path, eqntk::io::ImageLayout::nhwc);
  if (all.count < count)
    eqntk::tools::usage_error("eqntk_mc", "--data has " + std::to_string(all.count) + " images, --pairs needs " +
                                              std::to_string(count));
  const InputShape s = all.shape;
  if (s.height != s.width || s.height % size != 0)
    eqntk::tools::usage_error("eqntk_mc", "--data images are " + std::to_string(s.height) + "x" +
                                              std::to_string(s.width) +
                                              ": they must be square with a size divisible by --size " +
                                              std::to_string(size));
  const std::int64_t f = s.height / size;
  ImageSet out{{s.channels, size, size},
               count,
               std::vector<double>(static_cast<std::size_t>(count * s.channels * size * size), 0.0)};
  for (std::int64_t n = 0; n < count; ++n)
    for (std::int64_t c = 0; c < s.channels; ++c)
      for (std::int64_t i = 0; i < s.height; ++i)
        for (std::int64_t j = 0; j < s.width; ++j)
          out.pixels[static_cast<std::size_t>(((n * s.channels + c) * size + i / f) * size + j / f)] +=
              all.view(n).at(c, i, j) / static_cast<double>(f * f);
  return out;
}

// Samples of one kernel at one width: rel[a][i] = v_ia / v_a − 1.
using Samples = std::vector<std::vector<double>>;

struct Summary {
  double spread = 0, err = 0, err_lo = 0, err_hi = 0, bias = 0, bias_se = 0, zmax = 0;
};

double spread_of(const Samples& rel, const std::vector<std::int64_t>* pick) {
  double s = 0;
  std::int64_t m = 0;
  for (const auto& row : rel) {
    const std::size_t n = pick ? pick->size() : row.size();
    for (std::size_t k = 0; k < n; ++k) {
      const double d = row[pick ? static_cast<std::size_t>((*pick)[k]) : k];
      s += d * d;
      ++m;
    }
  }
  return std::sqrt(s / static_cast<double>(m));
}

double err_of(const Samples& rel, const std::vector<std::int64_t>* pick) {
  double e = 0;
  for (const auto& row : rel) {
    const std::size_t n = pick ? pick->size() : row.size();
    double mean = 0;
    for (std::size_t k = 0; k < n; ++k) mean += row[pick ? static_cast<std::size_t>((*pick)[k]) : k];
    e += std::abs(mean / static_cast<double>(n));
  }
  return e / static_cast<double>(rel.size());
}

Summary summarize(const Samples& rel, std::int64_t boot, std::mt19937_64& gen) {
  Summary s;
  const std::size_t m = rel[0].size(), pairs = rel.size();
  s.spread = spread_of(rel, nullptr);
  s.err = err_of(rel, nullptr);
  std::vector<double> per_init(m, 0.0);
  for (std::size_t a = 0; a < pairs; ++a) {
    double mean = 0, var = 0;
    for (double d : rel[a]) mean += d;
    mean /= static_cast<double>(m);
    for (double d : rel[a]) var += (d - mean) * (d - mean);
    const double se = std::sqrt(var / static_cast<double>(m - 1) / static_cast<double>(m));
    s.zmax = std::max(s.zmax, se > 0 ? std::abs(mean) / se : 0.0);
    for (std::size_t i = 0; i < m; ++i) per_init[i] += rel[a][i] / static_cast<double>(pairs);
  }
  double var = 0;
  for (double v : per_init) s.bias += v / static_cast<double>(m);
  for (double v : per_init) var += (v - s.bias) * (v - s.bias);
  s.bias_se = std::sqrt(var / static_cast<double>(m - 1) / static_cast<double>(m));
  std::uniform_int_distribution<std::int64_t> pick_one(0, static_cast<std::int64_t>(m) - 1);
  std::vector<double> errs;
  std::vector<std::int64_t> pick(m);
  for (std::int64_t b = 0; b < boot; ++b) {
    for (auto& p : pick) p = pick_one(gen);
    errs.push_back(err_of(rel, &pick));
  }
  std::sort(errs.begin(), errs.end());
  s.err_lo = errs[static_cast<std::size_t>(0.025 * static_cast<double>(boot - 1))];
  s.err_hi = errs[static_cast<std::size_t>(0.975 * static_cast<double>(boot - 1))];
  return s;
}

// Least-squares slope of y against x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (std::size_t k = 0; k < x.size(); ++k) {
    mx += x[k] / static_cast<double>(x.size());
    my += y[k] / static_cast<double>(x.size());
  }
  double sxy = 0, sxx = 0;
  for (std::size_t k = 0; k < x.size(); ++k) {
    sxy += (x[k] - mx) * (y[k] - my);
    sxx += (x[k] - mx) * (x[k] - mx);
  }
  return sxy / sxx;
}

// Log–log slope of the spread over the widths, and its bootstrap standard error (inits resampled
// independently at every width).
std::pair<double, double> spread_slope(const std::vector<std::int64_t>& widths, const std::vector<Samples>& rel,
                                       std::int64_t boot, std::mt19937_64& gen) {
  std::vector<double> lx, ly;
  for (std::size_t w = 0; w < widths.size(); ++w) {
    lx.push_back(std::log(static_cast<double>(widths[w])));
    ly.push_back(std::log(spread_of(rel[w], nullptr)));
  }
  const double s = slope(lx, ly);
  double sum = 0, sum2 = 0;
  for (std::int64_t b = 0; b < boot; ++b) {
    for (std::size_t w = 0; w < widths.size(); ++w) {
      const std::size_t m = rel[w][0].size();
      std::uniform_int_distribution<std::int64_t> pick_one(0, static_cast<std::int64_t>(m) - 1);
      std::vector<std::int64_t> pick(m);
      for (auto& p : pick) p = pick_one(gen);
      ly[w] = std::log(spread_of(rel[w], &pick));
    }
    const double sb = slope(lx, ly);
    sum += sb;
    sum2 += sb * sb;
  }
  const double mb = sum / static_cast<double>(boot);
  return {s, std::sqrt(std::max(0.0, sum2 / static_cast<double>(boot) - mb * mb))};
}

// Weighted least squares of bias(n) = a + b/n with weights 1/SE²: returns a, SE(a), b, SE(b), χ²/dof.
struct BiasFit {
  double a = 0, a_se = 0, b = 0, b_se = 0, chi2_dof = 0;
};

BiasFit fit_bias(const std::vector<std::int64_t>& widths, const std::vector<Summary>& s) {
  double s0 = 0, s1 = 0, s2 = 0, t0 = 0, t1 = 0;
  for (std::size_t w = 0; w < widths.size(); ++w) {
    const double u = 1.0 / static_cast<double>(widths[w]);
    const double wt = 1.0 / (s[w].bias_se * s[w].bias_se);
    s0 += wt;
    s1 += wt * u;
    s2 += wt * u * u;
    t0 += wt * s[w].bias;
    t1 += wt * u * s[w].bias;
  }
  const double det = s0 * s2 - s1 * s1;
  BiasFit f;
  f.a = (s2 * t0 - s1 * t1) / det;
  f.b = (s0 * t1 - s1 * t0) / det;
  f.a_se = std::sqrt(s2 / det);
  f.b_se = std::sqrt(s0 / det);
  double chi2 = 0;
  for (std::size_t w = 0; w < widths.size(); ++w) {
    const double r = (s[w].bias - f.a - f.b / static_cast<double>(widths[w])) / s[w].bias_se;
    chi2 += r * r;
  }
  f.chi2_dof = widths.size() > 2 ? chi2 / static_cast<double>(widths.size() - 2) : 0.0;
  return f;
}

int run(const Args& args) {
  const auto t_start = Clock::now();
  if (args.threads > 0) omp_set_num_threads(args.threads);
  const int threads = omp_get_max_threads();
  const Architecture arch = Architecture::parse(args.arch);
  // Pairs (a, b), a <= b, column by column: (0,0), (0,1), (1,1), (0,2), ... — the first args.pairs of them.
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  for (std::int64_t b = 0; static_cast<std::int64_t>(pairs.size()) < args.pairs; ++b)
    for (std::int64_t a = 0; a <= b && static_cast<std::int64_t>(pairs.size()) < args.pairs; ++a)
      pairs.emplace_back(a, b);
  const std::size_t n_pairs = pairs.size();
  const std::int64_t n_images = pairs.back().second + 1;
  ImageSet images = args.data.empty()
                        ? synthetic_images({args.channels, args.size, args.size}, n_images, args.images, args.seed)
                        : file_images(args.data, args.size, n_images);
  const Network net(arch, images.shape);

  eqntk::kernel::PairKernel pk(net);
  std::vector<eqntk::kernel::SelfChain> chains;
  for (std::int64_t a = 0; a < images.count; ++a) chains.push_back(pk.self_chain(images.view(a)));
  std::vector<double> exact_ntk, exact_nngp;
  for (const auto& [a, b] : pairs) {
    const auto v = pk.evaluate(images.view(a), chains[static_cast<std::size_t>(a)], images.view(b),
                               chains[static_cast<std::size_t>(b)]);
    if (v.ntk == 0.0 || v.nngp == 0.0)
      throw eqntk::InvalidArgument("the analytic kernel of pair (" + std::to_string(a) + "," + std::to_string(b) +
                                   ") is 0: relative errors are undefined; choose other images");
    exact_ntk.push_back(v.ntk);
    exact_nngp.push_back(v.nngp);
  }

  std::printf("# eqntk_mc: finite-width Monte Carlo vs analytic kernels (MATH.md §8)\n");
  std::printf("# arch=%s\n", arch.canonical().c_str());
  std::printf("# input=%lldx%lldx%lld images=%s (%lld) pairs=%zu inits=%lld seed=%llu threads=%d bootstrap=%lld\n",
              static_cast<long long>(images.shape.channels), static_cast<long long>(images.shape.height),
              static_cast<long long>(images.shape.width), args.data.empty() ? args.images.c_str() : args.data.c_str(),
              static_cast<long long>(n_images), n_pairs, static_cast<long long>(args.inits),
              static_cast<unsigned long long>(args.seed), threads, static_cast<long long>(args.bootstrap));
  for (std::size_t p = 0; p < n_pairs; ++p)
    std::printf("# analytic pair (%lld,%lld): nngp=%.10g ntk=%.10g\n", static_cast<long long>(pairs[p].first),
                static_cast<long long>(pairs[p].second), exact_nngp[p], exact_ntk[p]);
  std::fflush(stdout);

  const std::size_t n_widths = args.widths.size();
  // rel[kernel][width][pair][init]; kernels: 0 NTK, 1 NNGP f(x)f(x'), 2 conditional NNGP.
  std::vector<std::vector<Samples>> rel(3, std::vector<Samples>(n_widths));
  std::vector<double> seconds(n_widths);
  std::vector<std::int64_t> params(n_widths);
  for (std::size_t w = 0; w < n_widths; ++w) {
    const std::int64_t n = args.widths[w];
    const auto t0 = Clock::now();
    for (auto& k : rel) k[w].assign(n_pairs, std::vector<double>(static_cast<std::size_t>(args.inits)));
    std::exception_ptr error;
#pragma omp parallel
    {
      // One network and gradient buffer per thread, redrawn for every initialization.
      std::optional<eqntk::finite::FiniteNetwork> f;
      std::vector<double> gradients;
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t i = 0; i < args.inits; ++i) {
        try {
          const std::uint64_t seed =
              mix(mix(args.seed) ^ mix(static_cast<std::uint64_t>(n) << 32) ^ static_cast<std::uint64_t>(i));
          if (f)
            f->reseed(seed);
          else
            f.emplace(net, n, seed);
          if (i == 0) params[w] = f->parameter_count();
          const auto k = eqntk::finite::empirical_kernels(*f, images, gradients);
          for (std::size_t p = 0; p < n_pairs; ++p) {
            const auto idx = static_cast<std::size_t>(pairs[p].first * images.count + pairs[p].second);
            const auto ii = static_cast<std::size_t>(i);
            rel[0][w][p][ii] = k.ntk[idx] / exact_ntk[p] - 1.0;
            rel[1][w][p][ii] = k.nngp[idx] / exact_nngp[p] - 1.0;
            rel[2][w][p][ii] = k.nngp_cond[idx] / exact_nngp[p] - 1.0;
          }
        } catch (...) {
#pragma omp critical
          error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
    seconds[w] = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("# width %lld: %lld parameters, %.1f s\n", static_cast<long long>(n), static_cast<long long>(params[w]),
                seconds[w]);
    std::fflush(stdout);
  }

  const char* names[3] = {"ntk", "nngp_ff", "nngp_cond"};
  const char* titles[3] = {"NTK: sum_theta df(x)/dtheta df(x')/dtheta", "NNGP: f(x) f(x')",
                           "NNGP conditional on all but the last layer: sw^2 <h,h'>/n + sb^2"};
  std::mt19937_64 gen(mix(args.seed ^ 0xB007ULL));
  double slopes[3] = {0, 0, 0};
  double err_max_width[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    std::printf("\n# %s\n", titles[k]);
    std::printf("%-9s %6s %6s %9s %9s %21s %10s %9s %6s\n", "kernel", "width", "inits", "spread", "err", "err_ci95",
                "bias", "bias_se", "zmax");
    std::vector<Summary> sum;
    for (std::size_t w = 0; w < n_widths; ++w) {
      sum.push_back(summarize(rel[k][w], args.bootstrap, gen));
      const Summary& s = sum.back();
      std::printf("%-9s %6lld %6lld %9.5f %9.5f [%9.5f, %9.5f] %+10.5f %9.5f %6.2f\n", names[k],
                  static_cast<long long>(args.widths[w]), static_cast<long long>(args.inits), s.spread, s.err, s.err_lo,
                  s.err_hi, s.bias, s.bias_se, s.zmax);
    }
    const BiasFit f = fit_bias(args.widths, sum);
    const auto [sl, sl_se] = spread_slope(args.widths, rel[k], std::min<std::int64_t>(args.bootstrap, 500), gen);
    std::printf("%s fit of mean/analytic - 1 = a + b/n: a = %+.5f +- %.5f, b = %+.4f +- %.4f", names[k], f.a, f.a_se,
                f.b, f.b_se);
    if (n_widths > 2) std::printf(", chi2/dof = %.2f", f.chi2_dof);
    std::printf("\n%s log-log slope of the spread: %.3f +- %.3f (local:", names[k], sl, sl_se);
    for (std::size_t w = 1; w < n_widths; ++w)
      std::printf(" %lld->%lld %.3f", static_cast<long long>(args.widths[w - 1]),
                  static_cast<long long>(args.widths[w]),
                  std::log(sum[w].spread / sum[w - 1].spread) /
                      std::log(static_cast<double>(args.widths[w]) / static_cast<double>(args.widths[w - 1])));
    std::printf(")\n");
    slopes[k] = sl;
    err_max_width[k] = sum.back().err;
  }
  std::printf("\n# wall time %.1f s\n", std::chrono::duration<double>(Clock::now() - t_start).count());
  std::printf("slope_nngp_ff=%.3f rel_err_nngp_ff_max_width=%.5f rel_err_nngp_cond_max_width=%.5f\n", slopes[1],
              err_max_width[1], err_max_width[2]);
  std::printf("slope_ntk=%.3f slope_nngp=%.3f rel_err_ntk_max_width=%.5f\n", slopes[0], slopes[2], err_max_width[0]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  // Fail before computing (tools/input_check.hpp): the only file input is --data.
  if (!args.data.empty())
    eqntk::tools::require_file("eqntk_mc", args.data,
                               "give an existing .npy/IDX image file, e.g. /usr/share/datasets/fashion-mnist/"
                               "t10k-images-idx3-ubyte.gz (apt-get install dataset-fashion-mnist)");
  try {
    return run(args);
  } catch (const eqntk::InvalidArgument& e) {
    std::fprintf(stderr, "eqntk_mc: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqntk_mc: %s\n", e.what());
    return 1;
  }
}
