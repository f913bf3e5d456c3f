#include "eqntk/gpu/problem.hpp"

#include "eqntk/error.hpp"

#include <mutex>

namespace eqntk::gpu {
namespace {

struct NoWorker final : kernel::KernelProblem::Worker {};  // all state is in the device executor

}  // namespace

ImageProblem::ImageProblem(const kernel::Network& net, const data::ImageSet& train, const data::ImageSet& test,
                           const Device& device, std::function<void(const std::string&)> log)
    : net_(net),
      train_(train),
      test_(test),
      executor_(std::make_unique<PairExecutor>(net, device, 0, std::move(log))),
      precision_("float64 on OpenCL device '" + device.info().name + "'") {
  if (!(train.shape == net.input_shape()) || !(test.shape == net.input_shape()))
    throw InvalidArgument("image shapes do not match the network input");
  chains_[0].resize(static_cast<std::size_t>(train.count));
  chains_[1].resize(static_cast<std::size_t>(test.count));
}

ImageProblem::~ImageProblem() = default;

std::unique_ptr<kernel::KernelProblem::Worker> ImageProblem::make_worker() const {
  return std::make_unique<NoWorker>();
}

void ImageProblem::prepare(Worker&, int set, std::int64_t i) {
  const data::ImageSet& images = set == 0 ? train_ : test_;
  const std::lock_guard<std::mutex> lock(device_mutex_);  // the builder prepares on several threads
  chains_[set][static_cast<std::size_t>(i)] = executor_->self_chain(images.view(i));
}

kernel::KernelValue ImageProblem::evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const {
  const std::pair<std::int64_t, std::int64_t> one{i, j};
  kernel::KernelValue v;
  evaluate_batch(worker, set, std::span(&one, 1), &v);
  return v;
}

void ImageProblem::evaluate_batch(Worker&, int set, std::span<const std::pair<std::int64_t, std::int64_t>> ij,
                                  kernel::KernelValue* out) const {
  const data::ImageSet& rows = set == 0 ? train_ : test_;
  std::vector<PairRef> pairs;
  pairs.reserve(ij.size());
  for (const auto& [i, j] : ij)
    pairs.push_back({rows.view(i), &chains_[set][static_cast<std::size_t>(i)], train_.view(j),
                     &chains_[0][static_cast<std::size_t>(j)]});
  const auto v = executor_->evaluate(pairs);
  std::copy(v.begin(), v.end(), out);
}

kernel::KernelValue ImageProblem::self(int set, std::int64_t i) const {
  return chains_[set][static_cast<std::size_t>(i)].self;
}

}  // namespace eqntk::gpu
