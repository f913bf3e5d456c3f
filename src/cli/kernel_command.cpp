// `eqntk kernel`: Gram matrices of one or two image files on one process.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common.hpp"
#include "so3_options.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/error.hpp"
#include "eqntk/gpu/pair_executor.hpp"
#include "eqntk/io/atomic_file.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/so3/gram.hpp"

namespace eqntk::cli {

namespace po = boost::program_options;

namespace {

// Writes the chosen matrices of `g` through AtomicFile (opened before the heavy work by the caller).
void write_matrices(const po::variables_map& vm, const kernel::GramPair& g, std::vector<io::AtomicFile>& outputs) {
  const std::int64_t shape[2] = {g.rows, g.cols};
  std::size_t o = 0;
  for (const char* key : {"nngp", "ntk"}) {
    if (vm.count(key) == 0u) continue;
    const auto& m = std::string(key) == "nngp" ? g.nngp : g.ntk;
    for (const double v : m)
      if (!std::isfinite(v)) throw NumericalError("the " + std::string(key) + " matrix contains NaN/Inf");
    const std::string bytes = io::npy_header(shape, io::DType::f8);
    outputs[o].write(bytes);
    outputs[o].write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(m.data()), m.size() * sizeof(double)));
    ++o;
  }
  for (auto& f : outputs) f.commit();
}

// `eqntk kernel` with an SO(3) architecture: spherical signals or molecules, on rank 0.
void so3_kernel(const po::variables_map& vm, const detail::So3Options& options, int threads) {
  if (vm.count("layout") != 0u && !vm["layout"].defaulted())
    throw InvalidArgument("--layout applies to images only, not to SO(3) inputs (spherical signals, molecules)");
  const so3::Architecture arch = so3::Architecture::parse(vm["arch"].as<std::string>());
  const io::So3File x1 = io::read_so3_file(vm["x1"].as<std::string>(), options.kind);
  const bool two = vm.count("x2") != 0u;
  io::So3File x2;
  if (two) {
    x2 = io::read_so3_file(vm["x2"].as<std::string>(), options.kind);
    io::check_same_kind(x1, x2);
  }
  detail::check_molecule_flags(options, x1.kind, x1.source, x1.signals.band_limit);
  const io::So3Items items = io::make_items(x1, two ? &x2 : nullptr, options.item_options());
  const so3::GridChoice grid = detail::choose_grid(arch, items, options, false);
  const so3::Network net(arch, items.band_limit, items.channels, so3::GridOptions{grid.n, 0}, grid.coarse());
  std::vector<io::AtomicFile> outputs;
  for (const char* key : {"nngp", "ntk"})
    if (vm.count(key) != 0u) outputs.emplace_back(std::filesystem::path(vm[key].as<std::string>()));
  const auto t0 = std::chrono::steady_clock::now();
  const kernel::GramPair g =
      items.molecules
          ? so3::molecule_gram_matrices(net, options.sum, options.slots, items.atoms[0], two ? &items.atoms[1] : nullptr, threads)
          : so3::gram_matrices(net, items.signals[0], two ? &items.signals[1] : nullptr, threads);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_matrices(vm, g, outputs);
  std::printf("eqntk kernel: %lldx%lld matrices of %s on %s (L=%d, C=%d, SO(3) grid N=%d) in %.3f s\n",
              static_cast<long long>(g.rows), static_cast<long long>(g.cols), arch.canonical().c_str(),
              items.molecules ? "molecules" : "spherical signals", items.band_limit, items.channels, net.grid().n(), seconds);
}

}  // namespace

int kernel_command(const std::vector<std::string>& args) {
  po::options_description desc(
      "eqntk kernel: NNGP and NTK Gram matrices of image files (one process; under mpirun rank 0 works)\n\n"
      "Reads 4-D C-order float32/float64 .npy arrays (NHWC by default) and writes N1xN2 float64 .npy\n"
      "matrices K[i][j] = K(x1_i, x2_j). With an SO(3) architecture (s2lift ... so3pool) the files hold\n"
      "spherical signals (.npy coefficients or Driscoll-Healy samples) or molecules (XYZ). Options");
  desc.add_options()("help,h", "show this help")("x1", po::value<std::string>(), "first image file (.npy)")(
      "x2", po::value<std::string>(), "second image file (.npy); default: x1 (symmetric Gram matrix)")(
      "arch", po::value<std::string>(), "architecture string, e.g. lift:k=3,relu,gconv:k=3,relu,gpool,dense")(
      "layout", po::value<std::string>()->default_value("nhwc"), "image layout: nhwc or nchw")(
      "nngp", po::value<std::string>(), "output file for the NNGP matrix")("ntk", po::value<std::string>(),
                                                                           "output file for the NTK matrix")(
      "threads", po::value<int>()->default_value(1), "OpenMP threads over pairs")(
      "precision", po::value<std::string>()->default_value("float64"),
      "float64, or mixed: float32 storage of the covariance blocks, float64 arithmetic (planar networks)")(
      "device", po::value<std::string>()->default_value("cpu"),
      "cpu, or gpu: the kernels on an OpenCL device (float64, planar networks)")(
      "gpu-index", po::value<int>()->default_value(-1), "OpenCL device to use with --device gpu (default: the first)");
  detail::add_so3_options(desc, false);
  return detail::guarded([&]() -> int {
    po::variables_map vm;
    parallel::collectively([&] {
      detail::parse_command_line(args, desc, vm);
      po::notify(vm);
    });
    if (vm.count("help") != 0u) {
      std::ostringstream os;
      os << desc;
      detail::print(os.str());
      return kExitOk;
    }
    parallel::on_root([&] {
      if (vm.count("x1") == 0u) throw InvalidArgument("--x1 is required");
      if (vm.count("arch") == 0u) throw InvalidArgument("--arch is required");
      if (vm.count("nngp") == 0u && vm.count("ntk") == 0u) throw InvalidArgument("nothing to write: give --nngp and/or --ntk");
      if (vm.count("nngp") != 0u && vm.count("ntk") != 0u) {
        // Both would write the same .partial file; the second commit would then fail after the first
        // had already replaced the target.
        const auto same_file = [](const std::string& a, const std::string& b) {
          std::error_code ea, eb;
          const auto ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
          return ea || eb ? std::filesystem::path(a).lexically_normal() == std::filesystem::path(b).lexically_normal()
                          : ca == cb;
        };
        if (same_file(vm["nngp"].as<std::string>(), vm["ntk"].as<std::string>()))
          throw InvalidArgument("--nngp and --ntk name the same file '" + vm["ntk"].as<std::string>() + "'");
      }
      const std::string layout_text = vm["layout"].as<std::string>();
      if (layout_text != "nhwc" && layout_text != "nchw")
        throw InvalidArgument("--layout must be nhwc or nchw, got '" + layout_text + "'");
      const int threads = vm["threads"].as<int>();
      if (threads < 1) throw InvalidArgument("--threads must be at least 1");
      const std::string precision_text = vm["precision"].as<std::string>();
      if (precision_text != "float64" && precision_text != "mixed")
        throw InvalidArgument("--precision must be float64 or mixed, got '" + precision_text + "'");
      const auto precision = precision_text == "mixed" ? kernel::Precision::mixed : kernel::Precision::float64;
      const std::string device_text = vm["device"].as<std::string>();
      if (device_text != "cpu" && device_text != "gpu")
        throw InvalidArgument("--device must be cpu or gpu, got '" + device_text + "'");
      const bool gpu = device_text == "gpu";
      if (gpu && precision == kernel::Precision::mixed)
        throw InvalidArgument("--precision mixed applies to --device cpu only; the GPU computes in float64");
      const detail::So3Options so3_options = detail::read_so3_options(vm, false);
      if (detail::routes_to_so3(vm["arch"].as<std::string>(), so3_options)) {
        if (gpu) throw InvalidArgument("--device gpu applies to planar networks only, not to SO(3) architectures");
        if (precision == kernel::Precision::mixed)
          throw InvalidArgument("--precision mixed applies to planar networks only, not to SO(3) architectures");
        so3_kernel(vm, so3_options, threads);
        return;
      }
      const auto layout = layout_text == "nhwc" ? io::ImageLayout::nhwc : io::ImageLayout::nchw;
      const kernel::Architecture arch = kernel::Architecture::parse(vm["arch"].as<std::string>());
      const data::ImageSet x1 = io::load_images(vm["x1"].as<std::string>(), layout, false);
      data::ImageSet x2;
      const bool two = vm.count("x2") != 0u;
      if (two) {
        x2 = io::load_images(vm["x2"].as<std::string>(), layout, false);
        if (!(x2.shape == x1.shape))
          throw InvalidArgument("x1 images are " + std::to_string(x1.shape.channels) + "x" + std::to_string(x1.shape.height) +
                                "x" + std::to_string(x1.shape.width) + " (CxHxW) but x2 images are " +
                                std::to_string(x2.shape.channels) + "x" + std::to_string(x2.shape.height) + "x" +
                                std::to_string(x2.shape.width));
      }
      const kernel::Network net(arch, x1.shape);
      std::vector<io::AtomicFile> outputs;
      // Open the partial files before the heavy work so that an unwritable path fails fast.
      for (const char* key : {"nngp", "ntk"})
        if (vm.count(key) != 0u) outputs.emplace_back(std::filesystem::path(vm[key].as<std::string>()));
      const auto t0 = std::chrono::steady_clock::now();
      std::string where;
      kernel::GramPair g;
      if (gpu) {
        gpu::DeviceOptions device_options;
        device_options.index = vm["gpu-index"].as<int>();
        const gpu::Device device(device_options);
        where = " on OpenCL device '" + device.info().name + "'";
        g = gpu::gram_matrices(net, x1, two ? &x2 : nullptr, device, 0,
                               [](const std::string& line) { std::printf("%s\n", line.c_str()); });
      } else {
        g = kernel::gram_matrices(net, x1, two ? &x2 : nullptr, threads, precision);
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      write_matrices(vm, g, outputs);
      std::printf("eqntk kernel: %lldx%lld matrices of %s%s in %.3f s\n", static_cast<long long>(g.rows),
                  static_cast<long long>(g.cols), arch.canonical().c_str(), where.c_str(), seconds);
    });
    return kExitOk;
  });
}

}  // namespace eqntk::cli
