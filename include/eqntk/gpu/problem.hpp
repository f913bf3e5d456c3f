// Images through the GPU executor, as the distributed Gram builder sees them (kernel/problem.hpp):
// self chains and the pairs of a tile (in batches) on the device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "eqntk/gpu/device.hpp"
#include "eqntk/gpu/pair_executor.hpp"
#include "eqntk/kernel/problem.hpp"

namespace eqntk::gpu {

class ImageProblem final : public kernel::KernelProblem {
 public:
  /// Keeps references: net, train, test and device must outlive the problem. Throws as PairExecutor.
  ImageProblem(const kernel::Network& net, const data::ImageSet& train, const data::ImageSet& test,
               const Device& device, std::function<void(const std::string&)> log = {});
  ~ImageProblem() override;
  [[nodiscard]] std::int64_t count(int set) const override { return set == 0 ? train_.count : test_.count; }
  [[nodiscard]] std::unique_ptr<Worker> make_worker() const override;
  void prepare(Worker& worker, int set, std::int64_t i) override;
  [[nodiscard]] kernel::KernelValue evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const override;
  [[nodiscard]] kernel::KernelValue self(int set, std::int64_t i) const override;
  [[nodiscard]] bool batched() const override { return true; }
  /// "float64 on OpenCL device '<name>'": kernels are bitwise reproducible on the same device model only,
  /// so a checkpoint resumes on the kind of device that wrote it.
  [[nodiscard]] std::string precision() const override { return precision_; }
  void evaluate_batch(Worker& worker, int set, std::span<const std::pair<std::int64_t, std::int64_t>> ij,
                      kernel::KernelValue* out) const override;

 private:
  const kernel::Network& net_;
  const data::ImageSet& train_;
  const data::ImageSet& test_;
  std::unique_ptr<PairExecutor> executor_;  // evaluate_batch runs on one thread (batched()); prepare locks
  std::mutex device_mutex_;
  std::vector<kernel::SelfChain> chains_[2];
  std::string precision_;
};

}  // namespace eqntk::gpu
