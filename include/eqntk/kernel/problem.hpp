// A family of pair kernels over two item sets — set 0 (training) and set 1 (test) — as the distributed
// Gram builder sees it: planar images, spherical signals, molecules. No MPI here.
//
// Thread safety: prepare() for distinct items and evaluate() may run concurrently, each thread with its
// own Worker; evaluate() only reads prepared self chains.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqntk/kernel/image.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace eqntk::kernel {

class KernelProblem {
 public:
  /// Per-thread scratch (workspaces, FFT buffers).
  class Worker {
   public:
    virtual ~Worker() = default;
  };

  virtual ~KernelProblem() = default;
  /// Number of items in set 0 (train) or 1 (test).
  [[nodiscard]] virtual std::int64_t count(int set) const = 0;
  [[nodiscard]] virtual std::unique_ptr<Worker> make_worker() const = 0;
  /// Computes and keeps the self chain of item i of `set`; must precede evaluate() on that item.
  virtual void prepare(Worker& worker, int set, std::int64_t i) = 0;
  /// K and Θ of (item i of `set`, training item j), both prepared.
  [[nodiscard]] virtual KernelValue evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const = 0;
  /// K and Θ of (item, item) of a prepared item.
  [[nodiscard]] virtual KernelValue self(int set, std::int64_t i) const = 0;
  /// True when the builder should hand a tile's pairs to evaluate_batch() at once, from one thread (an
  /// accelerator evaluates them in batches), instead of evaluate() per pair on OpenMP threads.
  [[nodiscard]] virtual bool batched() const { return false; }
  /// out[p] = evaluate(worker, set, ij[p].first, ij[p].second) for every p; the result of a pair must not
  /// depend on the other pairs of the call. Default: one by one.
  virtual void evaluate_batch(Worker& worker, int set, std::span<const std::pair<std::int64_t, std::int64_t>> ij,
                              KernelValue* out) const {
    for (std::size_t p = 0; p < ij.size(); ++p) out[p] = evaluate(worker, set, ij[p].first, ij[p].second);
  }
  /// The arithmetic of the stored intermediates, "float64" or "mixed" (part of a checkpoint's identity).
  [[nodiscard]] virtual std::string precision() const { return "float64"; }
};

/// The instruction set every kernel engine of this process uses: "avx512", "avx2" or "baseline", the widest
/// the CPU supports unless EQNTK_ISA narrows it (kernels of different sets differ in the last bits).
[[nodiscard]] const char* instruction_set();

/// Images through the planar engine (PairKernel).
class ImageProblem final : public KernelProblem {
 public:
  /// Keeps references: net, train and test must outlive the problem.
  ImageProblem(const Network& net, const ImageSet& train, const ImageSet& test,
               Precision precision = Precision::float64);
  [[nodiscard]] std::int64_t count(int set) const override { return set == 0 ? train_.count : test_.count; }
  [[nodiscard]] std::unique_ptr<Worker> make_worker() const override;
  void prepare(Worker& worker, int set, std::int64_t i) override;
  [[nodiscard]] KernelValue evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const override;
  [[nodiscard]] KernelValue self(int set, std::int64_t i) const override;
  [[nodiscard]] std::string precision() const override {
    return precision_ == Precision::mixed ? "mixed" : "float64";
  }

 private:
  const Network& net_;
  const ImageSet& train_;
  const ImageSet& test_;
  Precision precision_;
  std::vector<SelfChain> chains_[2];
};

}  // namespace eqntk::kernel
