// A family of pair kernels over two item sets — set 0 (training) and set 1 (test) — as the Gram drivers
// see it: planar images, spherical signals, molecules. The distributed builder (parallel::build_gram) and
// the dense one-process driver (dense_gram, kernel/gram.hpp) both run on this interface. No MPI here.
//
// evaluate(w, s, i, j) is K and Θ of (item i of set s, training item j), always with the arguments in this
// order, so an entry is bitwise identical whoever computes it. evaluate_batch() is the batched entry point:
// the distributed builder hands it a whole tile when batched() (an accelerator), the dense driver one row of
// pairs at a time; the default loops over evaluate().
//
// Every family is one EngineProblem<Items>: the per-item engine (PairKernel, so3::PairKernel,
// so3::MoleculeKernel) behind an `Items` adapter that holds the two sets (see EngineProblem).
//
// Thread safety: prepare() for distinct items and evaluate()/evaluate_batch() may run concurrently, each
// thread with its own Worker; evaluation only reads prepared self chains.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqntk/data/image.hpp"
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

/// The KernelProblem of a per-item engine. `Items` holds the two sets and adapts the engine:
///   using Engine = ...;  using Chain = ...;             (Chain has a member `KernelValue self`)
///   std::int64_t count(int set) const;
///   std::unique_ptr<Engine> make_engine() const;
///   Chain self_chain(Engine&, int set, std::int64_t i) const;
///   KernelValue evaluate(Engine&, int set, std::int64_t i, const Chain&, std::int64_t j, const Chain&) const;
///   std::string precision() const;
/// The problem keeps one chain per item of both sets. The families below name it with their constructors.
template <typename Items>
class EngineProblem : public KernelProblem {
 public:
  explicit EngineProblem(Items items) : items_(std::move(items)) {
    chains_[0].resize(static_cast<std::size_t>(items_.count(0)));
    chains_[1].resize(static_cast<std::size_t>(items_.count(1)));
  }
  [[nodiscard]] std::int64_t count(int set) const override { return items_.count(set); }
  [[nodiscard]] std::unique_ptr<Worker> make_worker() const override {
    return std::make_unique<EngineWorker>(items_.make_engine());
  }
  void prepare(Worker& worker, int set, std::int64_t i) override {
    chains_[set][static_cast<std::size_t>(i)] = items_.self_chain(engine(worker), set, i);
  }
  [[nodiscard]] KernelValue evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const override {
    return items_.evaluate(engine(worker), set, i, chains_[set][static_cast<std::size_t>(i)], j,
                           chains_[0][static_cast<std::size_t>(j)]);
  }
  [[nodiscard]] KernelValue self(int set, std::int64_t i) const override {
    return chains_[set][static_cast<std::size_t>(i)].self;
  }
  [[nodiscard]] std::string precision() const override { return items_.precision(); }
  [[nodiscard]] const Items& items() const { return items_; }

 private:
  using Engine = typename Items::Engine;
  struct EngineWorker final : Worker {
    explicit EngineWorker(std::unique_ptr<Engine> e) : engine(std::move(e)) {}
    std::unique_ptr<Engine> engine;
  };
  static Engine& engine(Worker& w) { return *static_cast<EngineWorker&>(w).engine; }

  Items items_;
  std::vector<typename Items::Chain> chains_[2];
};

/// Images through the planar engine (PairKernel): the two sets of an ImageProblem.
class ImageItems {
 public:
  using Engine = PairKernel;
  using Chain = SelfChain;
  /// Keeps references: net, train and test must outlive the problem. Throws InvalidArgument unless both
  /// sets have the network's input shape.
  ImageItems(const Network& net, const data::ImageSet& train, const data::ImageSet& test,
             Precision precision = Precision::float64);
  [[nodiscard]] std::int64_t count(int set) const { return set == 0 ? train_.count : test_.count; }
  [[nodiscard]] std::unique_ptr<Engine> make_engine() const { return std::make_unique<PairKernel>(net_, precision_); }
  [[nodiscard]] Chain self_chain(Engine& e, int set, std::int64_t i) const { return e.self_chain(images(set).view(i)); }
  [[nodiscard]] KernelValue evaluate(Engine& e, int set, std::int64_t i, const Chain& ci, std::int64_t j,
                                     const Chain& cj) const {
    return e.evaluate(images(set).view(i), ci, train_.view(j), cj);
  }
  [[nodiscard]] std::string precision() const { return precision_ == Precision::mixed ? "mixed" : "float64"; }

 private:
  [[nodiscard]] const data::ImageSet& images(int set) const { return set == 0 ? train_ : test_; }
  const Network& net_;
  const data::ImageSet& train_;
  const data::ImageSet& test_;
  Precision precision_;
};

/// Images through the planar engine. Keeps references: net, train and test must outlive the problem.
class ImageProblem final : public EngineProblem<ImageItems> {
 public:
  ImageProblem(const Network& net, const data::ImageSet& train, const data::ImageSet& test,
               Precision precision = Precision::float64)
      : EngineProblem(ImageItems(net, train, test, precision)) {}
};

}  // namespace eqntk::kernel
