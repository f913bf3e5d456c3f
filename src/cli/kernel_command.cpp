// `eqntk kernel`: Gram matrices of one or two image files on one process.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/dist/collective.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/atomic_file.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/kernel/gram.hpp"

namespace eqntk::cli {

namespace po = boost::program_options;

int kernel_command(const std::vector<std::string>& args) {
  po::options_description desc(
      "eqntk kernel: NNGP and NTK Gram matrices of image files (one process; under mpirun rank 0 works)\n\n"
      "Reads 4-D C-order float32/float64 .npy arrays (NHWC by default) and writes N1xN2 float64 .npy\n"
      "matrices K[i][j] = K(x1_i, x2_j). Options");
  desc.add_options()("help,h", "show this help")("x1", po::value<std::string>(), "first image file (.npy)")(
      "x2", po::value<std::string>(), "second image file (.npy); default: x1 (symmetric Gram matrix)")(
      "arch", po::value<std::string>(), "architecture string, e.g. lift:k=3,relu,gconv:k=3,relu,gpool,dense")(
      "layout", po::value<std::string>()->default_value("nhwc"), "image layout: nhwc or nchw")(
      "nngp", po::value<std::string>(), "output file for the NNGP matrix")("ntk", po::value<std::string>(),
                                                                           "output file for the NTK matrix")(
      "threads", po::value<int>()->default_value(1), "OpenMP threads over pairs");
  return detail::guarded([&]() -> int {
    po::variables_map vm;
    dist::collectively([&] {
      detail::parse_command_line(args, desc, vm);
      po::notify(vm);
    });
    if (vm.count("help") != 0u) {
      std::ostringstream os;
      os << desc;
      detail::print(os.str());
      return kExitOk;
    }
    dist::on_root([&] {
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
      const auto layout = layout_text == "nhwc" ? io::ImageLayout::nhwc : io::ImageLayout::nchw;
      const kernel::Architecture arch = kernel::Architecture::parse(vm["arch"].as<std::string>());
      const kernel::ImageSet x1 = io::load_images(vm["x1"].as<std::string>(), layout, false);
      kernel::ImageSet x2;
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
      std::vector<std::pair<io::AtomicFile*, bool>> targets;  // (file, is_ntk)
      // Open the partial files before the heavy work so that an unwritable path fails fast.
      for (const char* key : {"nngp", "ntk"})
        if (vm.count(key) != 0u) outputs.emplace_back(std::filesystem::path(vm[key].as<std::string>()));
      const auto t0 = std::chrono::steady_clock::now();
      const kernel::GramPair g = kernel::gram_matrices(net, x1, two ? &x2 : nullptr, threads);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
      std::printf("eqntk kernel: %lldx%lld matrices of %s in %.3f s\n", static_cast<long long>(g.rows),
                  static_cast<long long>(g.cols), arch.canonical().c_str(), seconds);
    });
    return kExitOk;
  });
}

}  // namespace eqntk::cli
