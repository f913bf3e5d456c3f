#include "eqntk/kernel/problem.hpp"

#include "eqntk/error.hpp"
#include "isa.hpp"

namespace eqntk::kernel {
namespace {

struct ImageWorker final : KernelProblem::Worker {
  ImageWorker(const Network& net, Precision precision) : engine(net, precision) {}
  PairKernel engine;
};

}  // namespace

const char* instruction_set() { return detail::isa_name(detail::best_isa()); }

ImageProblem::ImageProblem(const Network& net, const ImageSet& train, const ImageSet& test, Precision precision)
    : net_(net), train_(train), test_(test), precision_(precision) {
  if (!(train.shape == net.input_shape()) || !(test.shape == net.input_shape()))
    throw InvalidArgument("image shapes do not match the network input");
  chains_[0].resize(static_cast<std::size_t>(train.count));
  chains_[1].resize(static_cast<std::size_t>(test.count));
}

std::unique_ptr<KernelProblem::Worker> ImageProblem::make_worker() const {
  return std::make_unique<ImageWorker>(net_, precision_);
}

void ImageProblem::prepare(Worker& worker, int set, std::int64_t i) {
  const ImageSet& images = set == 0 ? train_ : test_;
  chains_[set][static_cast<std::size_t>(i)] = static_cast<ImageWorker&>(worker).engine.self_chain(images.view(i));
}

KernelValue ImageProblem::evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const {
  const ImageSet& rows = set == 0 ? train_ : test_;
  return static_cast<ImageWorker&>(worker).engine.evaluate(rows.view(i), chains_[set][static_cast<std::size_t>(i)],
                                                           train_.view(j), chains_[0][static_cast<std::size_t>(j)]);
}

KernelValue ImageProblem::self(int set, std::int64_t i) const { return chains_[set][static_cast<std::size_t>(i)].self; }

}  // namespace eqntk::kernel
