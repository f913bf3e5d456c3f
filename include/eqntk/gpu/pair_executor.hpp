// The GPU executor of the kernel recursion (MATH.md §3–§5, §10): NNGP and NTK of many image pairs per
// kernel launch, on one OpenCL device (eqntk/gpu/device.hpp).
//
// It computes what kernel::PairKernel::evaluate computes, to rounding (≤ 1e-12 relative in the tests), by
// running the same kernel::Plan (kernel/plan.hpp) unit by unit: one "slot" per pair and block B_h, h ∈ G
// (|G| slots per pair for every point group of MATH §10; one for a CNN or a flatten readout). Per batch the
// device holds the K and Θ blocks of every slot. A Linear unit is two launches (pass A over a, pass B over
// b of MATH §5.3, each along the slot's window line from kernel::box_lines(h)) — on devices with dedicated
// local memory (GPUs; DeviceOptions::local_passes) a work-group marches its tile of outputs through a ring
// of window planes in local memory, loading each input entry once instead of q times; elsewhere (PoCL)
// each output reads its q entries from global memory. Both sum a = −p..p in order. Pass B carries the scale,
// bias, NTK update and the following Activation unit (dual activation). The last Linear unit, when only a
// nonlinearity stands between it and a gpool/gap readout (Plan::fusable_last), also forms the pooled
// partial sums in local memory instead of storing its block. AvgPool averages each stored block over s×s
// cells on both sides; ResBegin copies the block into the res block's saved buffers, ResEnd adds them;
// an Activation not right after a Linear runs on the stored block; a Readout over a stored block sums all
// entries (gpool/gap) or the e-block's same-position entries (flatten after avgpool). Flatten readouts
// without avgpool run the same-position chain (O(HW) per slot). Host↔device traffic per batch: the
// batch's distinct images and their variance maps in, two numbers per slot out.
//
// Self chains (variance maps, K(x, x), the head variances) run on the device too, one image at a time:
// the same-position chain of (x, x), or — with an avgpool, whose pooled diagonal needs off-diagonal self
// entries — the full recursion of (x, x), each variance map taken from the e-block's same-position
// pre-activation entries before its nonlinearity. The dense head (scalars) runs on the host.
// Every layer kind is covered: lift/gconv/conv (k odd; same/valid/circular), relu/erf/id, avgpool,
// res(...), gpool/gap/flatten, dense heads with nonlinearities, every point group.
//
// Results depend only on (network, pair, device): every reduction has a fixed order, so they are the same
// for any batch size or pair order.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/gpu/device.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace eqntk::gpu {

/// One pair: both images with their self chains (from kernel::PairKernel::self_chain of the same network).
/// Images are identified by their data pointer within one evaluate() call.
struct PairRef {
  data::ImageView x;
  const kernel::SelfChain* sx = nullptr;
  data::ImageView x2;
  const kernel::SelfChain* sx2 = nullptr;
};

/// Floating-point work of one entry-layer of the device kernels, counted from kernels.cl.
struct WorkPerEntryLayer {
  double flops = 0.0;  ///< arithmetic operations (window sums of K and Θ, epilogue; duals excluded)
  double bytes = 0.0;  ///< global-memory bytes read and written (no cache reuse assumed)
};

class PairExecutor {
 public:
  /// `max_batch` > 0 caps the pairs per batch; otherwise the batch is sized to ~60 % of the device
  /// memory. `log` receives one line when the batch is reduced after the device ran out of memory.
  /// Throws InvalidArgument for a network the executor cannot run, DeviceError when even one pair does
  /// not fit in the device's memory.
  PairExecutor(const kernel::Network& net, const Device& device, std::int64_t max_batch = 0,
               std::function<void(const std::string&)> log = {});
  ~PairExecutor();
  PairExecutor(const PairExecutor&) = delete;
  PairExecutor& operator=(const PairExecutor&) = delete;

  /// K(x, x2), Θ(x, x2) of every pair, in order. Throws InvalidArgument on a shape mismatch or a missing
  /// self chain, DeviceError on a device failure (out of memory at batch size 1 included).
  [[nodiscard]] std::vector<kernel::KernelValue> evaluate(std::span<const PairRef> pairs);

  /// The self chain of image x — variance maps, head variances, K(x, x) — on the device: what
  /// kernel::PairKernel::self_chain computes, to rounding. Throws as evaluate().
  [[nodiscard]] kernel::SelfChain self_chain(const data::ImageView& x);

  /// Pairs per batch now (it shrinks after an out-of-memory retry).
  [[nodiscard]] std::int64_t batch() const { return batch_; }
  /// Work per entry-layer of a spatial layer on the block path (window size q of the network's layers):
  /// window passes reading global memory directly (tile = 0: q reads of K and Θ per entry and pass), or
  /// marching through local memory with tiles of `tile` outputs along the window's trailing dim ((tile + q − 1)
  /// / tile global reads per entry and pass).
  [[nodiscard]] static WorkPerEntryLayer work_per_entry_layer(int q, int tile = 0);

 private:
  struct Impl;
  /// Runs `work` with buffers for batch_ pairs; on device out-of-memory halves batch_, says so and returns
  /// false (the caller retries); throws DeviceError when batch_ is already 1.
  bool with_memory_retry(const std::function<void()>& work);
  std::unique_ptr<Impl> impl_;
  std::int64_t batch_ = 1;
  std::function<void(const std::string&)> log_;
};

/// As kernel::gram_matrices, on the device: self chains, then the pairs (i ≥ j only when symmetric,
/// mirrored) in batches. Precision is float64.
[[nodiscard]] kernel::GramPair gram_matrices(const kernel::Network& net, const data::ImageSet& x1,
                                             const data::ImageSet* x2, const Device& device,
                                             std::int64_t max_batch = 0,
                                             const std::function<void(const std::string&)>& log = {});

}  // namespace eqntk::gpu
