#include "eqntk/gpu/pair_executor.hpp"

#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/head.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <limits>
#include <type_traits>
#include <unordered_map>

#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/dual.hpp"
#include "opencl.hpp"

namespace eqntk::gpu {

using kernel::KernelValue;
using kernel::LayerKind;
using kernel::Network;
using kernel::Stage;

namespace {

// Codes shared with kernels.cl.
constexpr int kSlotInts = 8;
cl_int pad_code(kernel::Padding p) {
  switch (p) {
    case kernel::Padding::valid: return 1;
    case kernel::Padding::circular: return 2;
    default: return 0;
  }
}
cl_int act_code(LayerKind k) {
  switch (k) {
    case LayerKind::relu: return 1;
    case LayerKind::erf: return 2;
    default: return 0;  // id: Σ = K, Σ̇ = 1
  }
}

struct Local {
  std::size_t bytes;
};

void set_arg(cl_kernel k, cl_uint i, const Buffer& b) {
  const cl_mem m = b.get();
  check(clSetKernelArg(k, i, sizeof m, &m), "clSetKernelArg");
}
void set_arg(cl_kernel k, cl_uint i, Local l) { check(clSetKernelArg(k, i, l.bytes, nullptr), "clSetKernelArg"); }
template <class T>
  requires std::is_arithmetic_v<T>
void set_arg(cl_kernel k, cl_uint i, T v) {
  check(clSetKernelArg(k, i, sizeof v, &v), "clSetKernelArg");
}
template <class... A>
void set_args(cl_kernel k, const A&... a) {
  cl_uint i = 0;
  (set_arg(k, i++, a), ...);
}

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// One spatial linear layer as the device runs it.
struct Step {
  cl_int ih = 0, iw = 0, oh = 0, ow = 0, p = 0, pad = 0;
  cl_double scale = 1.0, bias = 0.0;
  cl_int act = 0;          // activation fused into the layer's output (0 also for id)
  bool nonlinear = false;  // a nonlinearity (relu/erf/id) follows: its variance map is recorded
  cl_long var_offset = 0;  // of that nonlinearity's variance map in an image's var record
  bool first = false;      // reads the images (Θ⁰ = 0)
  bool last = false;       // feeds the readout
};

}  // namespace

struct PairExecutor::Impl {
  const Network& net;
  DeviceState& dev;
  bool diag = false;  // flatten readout: same-position chain, one slot per pair
  int slots_per_pair = 1;
  std::vector<Step> steps;
  std::vector<std::int64_t> var_offset;  // per stage (spatial nonlinearities), in an image's var record
  std::int64_t var_stride = 0;
  std::int64_t stride = 1;     // doubles per slot in the block buffers
  std::int64_t final_n = 1;    // entries per slot at the readout
  std::int64_t groups = 1;     // pass-B work-groups per slot of the last layer
  std::size_t local = 64;      // work-group size of the reductions (a power of two)
  std::size_t local_map = 64;  // work-group size of the map kernels
  std::vector<std::array<cl_int, 4>> lines;  // per block: dvA, sgnA, dvB, sgnB
  cl_kernel k_pass_a = nullptr, k_pass_b = nullptr, k_diag_input = nullptr, k_diag_layer = nullptr,
            k_reduce = nullptr;
  // Device buffers for `allocated` pairs.
  std::int64_t allocated = 0;
  Buffer a_k, a_t, b_k, b_t, c_k, c_t, part_k, part_t, sum_k, sum_t, slot_table, images, var;

  Impl(const Network& n, DeviceState& d) : net(n), dev(d) {}
  ~Impl() {
    for (cl_kernel k : {k_pass_a, k_pass_b, k_diag_input, k_diag_layer, k_reduce})
      if (k != nullptr) clReleaseKernel(k);
  }

  [[nodiscard]] std::int64_t pair_bytes() const {
    const std::int64_t s = slots_per_pair;
    return 8 * (s * stride * (diag ? 4 : 6) + 2 * s * groups + 2 * s) + 4 * kSlotInts * s +
           2 * 8 * (net.input_shape().channels * net.input_shape().height * net.input_shape().width + var_stride);
  }

  void allocate(std::int64_t pairs) {
    const std::int64_t slots = pairs * slots_per_pair;
    const auto bytes = [&](std::int64_t doubles) { return static_cast<std::size_t>(doubles) * 8; };
    for (Buffer* b : {&a_k, &a_t, &b_k, &b_t, &c_k, &c_t, &part_k, &part_t, &sum_k, &sum_t, &slot_table, &images, &var})
      b->reset();
    a_k = dev.buffer(bytes(slots * stride));
    a_t = dev.buffer(bytes(slots * stride));
    c_k = dev.buffer(bytes(slots * stride));
    c_t = dev.buffer(bytes(slots * stride));
    if (!diag) {
      b_k = dev.buffer(bytes(slots * stride));
      b_t = dev.buffer(bytes(slots * stride));
      part_k = dev.buffer(bytes(slots * groups));
      part_t = dev.buffer(bytes(slots * groups));
    }
    sum_k = dev.buffer(bytes(slots));
    sum_t = dev.buffer(bytes(slots));
    slot_table = dev.buffer(static_cast<std::size_t>(slots * kSlotInts) * sizeof(cl_int));
    const std::int64_t isize = net.input_shape().channels * net.input_shape().height * net.input_shape().width;
    const std::int64_t max_images = 2 * pairs;  // distinct images of a batch
    images = dev.buffer(bytes(max_images * isize));
    var = dev.buffer(bytes(max_images * std::max<std::int64_t>(var_stride, 1)));
    allocated = pairs;
  }

  void launch(cl_kernel k, std::size_t n, std::size_t slots, std::size_t l) const {
    const std::size_t global[2] = {round_up(std::max<std::size_t>(n, 1), l), slots};
    const std::size_t loc[2] = {l, 1};
    check(clEnqueueNDRangeKernel(dev.queue, k, 2, nullptr, global, loc, 0, nullptr, nullptr), "clEnqueueNDRangeKernel");
  }

  // Runs one batch (pairs.size() ≤ allocated) and writes the pooled values per pair.
  void run(std::span<const PairRef> pairs, KernelValue* out) {
    const auto& shape = net.input_shape();
    const std::int64_t isize = shape.channels * shape.height * shape.width;
    // Distinct images of the batch, their pixels and variance records.
    std::unordered_map<const double*, cl_int> index;
    std::vector<double> img, vars;
    const auto add_image = [&](const data::ImageView& x, const kernel::SelfChain* sc) -> cl_int {
      const auto [it, inserted] = index.try_emplace(x.data, static_cast<cl_int>(index.size()));
      if (inserted) {
        img.insert(img.end(), x.data, x.data + isize);
        const std::size_t at = vars.size();
        vars.resize(at + static_cast<std::size_t>(std::max<std::int64_t>(var_stride, 1)), 0.0);
        for (std::size_t s = 0; s < net.stages().size(); ++s)
          if (net.stages()[s].spatial_nonlinearity())
            std::copy(sc->var[s].begin(), sc->var[s].end(), vars.begin() + static_cast<std::ptrdiff_t>(at) + var_offset[s]);
      }
      return it->second;
    };
    std::vector<cl_int> table;
    table.reserve(pairs.size() * static_cast<std::size_t>(slots_per_pair * kSlotInts));
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const cl_int ia = add_image(pairs[i].x, pairs[i].sx), ib = add_image(pairs[i].x2, pairs[i].sx2);
      for (int d = 0; d < slots_per_pair; ++d) {
        const auto& l = lines[static_cast<std::size_t>(d)];
        table.insert(table.end(), {ia, ib, l[0], l[1], l[2], l[3], static_cast<cl_int>(i), 0});
      }
    }
    const std::size_t slots = pairs.size() * static_cast<std::size_t>(slots_per_pair);
    check(clEnqueueWriteBuffer(dev.queue, slot_table.get(), CL_TRUE, 0, table.size() * sizeof(cl_int), table.data(), 0,
                               nullptr, nullptr),
          "clEnqueueWriteBuffer");
    check(clEnqueueWriteBuffer(dev.queue, images.get(), CL_TRUE, 0, img.size() * 8, img.data(), 0, nullptr, nullptr),
          "clEnqueueWriteBuffer");
    check(clEnqueueWriteBuffer(dev.queue, var.get(), CL_TRUE, 0, vars.size() * 8, vars.data(), 0, nullptr, nullptr),
          "clEnqueueWriteBuffer");
    const cl_long st = stride, vs = var_stride;
    const cl_int channels = static_cast<cl_int>(shape.channels);
    if (diag) {
      const cl_int h = static_cast<cl_int>(shape.height), w = static_cast<cl_int>(shape.width);
      set_args(k_diag_input, a_k, a_t, slot_table, images, st, channels, h, w);
      launch(k_diag_input, static_cast<std::size_t>(h * w), slots, local_map);
      for (const Step& s : steps) {
        set_args(k_diag_layer, a_k, a_t, c_k, c_t, slot_table, var, st, s.ih, s.iw, s.oh, s.ow, s.p, s.pad, s.scale,
                 s.bias, s.act, vs, s.var_offset, cl_int{0});
        launch(k_diag_layer, static_cast<std::size_t>(s.oh) * static_cast<std::size_t>(s.ow), slots, local_map);
        std::swap(a_k, c_k);
        std::swap(a_t, c_t);
      }
      const cl_long n = final_n;
      set_args(k_reduce, a_k, a_t, sum_k, sum_t, Local{local * 8}, Local{local * 8}, st, n);
      launch(k_reduce, local, slots, local);
    } else {
      for (const Step& s : steps) {
        set_args(k_pass_a, a_k, a_t, b_k, b_t, slot_table, images, st, static_cast<cl_int>(s.first), channels, s.ih, s.iw,
                 s.oh, s.ow, s.p, s.pad);
        const std::size_t mid = static_cast<std::size_t>(s.oh) * static_cast<std::size_t>(s.iw) *
                                static_cast<std::size_t>(std::max(s.oh * s.iw, s.ih * s.ow));
        launch(k_pass_a, mid, slots, local_map);
        set_args(k_pass_b, b_k, b_t, c_k, c_t, slot_table, var, part_k, part_t, Local{local * 8}, Local{local * 8}, st,
                 static_cast<cl_int>(s.first), s.ih, s.iw, s.oh, s.ow, s.p, s.pad, s.scale, s.bias, s.act, vs,
                 s.var_offset, static_cast<cl_int>(s.last));
        const std::size_t n = static_cast<std::size_t>(s.oh) * static_cast<std::size_t>(s.ow) * static_cast<std::size_t>(s.oh) *
                              static_cast<std::size_t>(s.ow);
        launch(k_pass_b, n, slots, local);
        if (!s.last) {
          std::swap(a_k, c_k);
          std::swap(a_t, c_t);
        }
      }
      const cl_long g = groups;
      set_args(k_reduce, part_k, part_t, sum_k, sum_t, Local{local * 8}, Local{local * 8}, g, g);
      launch(k_reduce, local, slots, local);
    }
    std::vector<double> sk(slots), stt(slots);
    check(clEnqueueReadBuffer(dev.queue, sum_k.get(), CL_FALSE, 0, slots * 8, sk.data(), 0, nullptr, nullptr),
          "clEnqueueReadBuffer");
    check(clEnqueueReadBuffer(dev.queue, sum_t.get(), CL_TRUE, 0, slots * 8, stt.data(), 0, nullptr, nullptr),
          "clEnqueueReadBuffer");
    // gpool/gap: (1/|G|) Σ_Δ mean_{t,t'} B_Δ (MATH §5.1); flatten: mean over positions.
    const double count = static_cast<double>(slots_per_pair) * static_cast<double>(final_n);
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      double k = 0.0, t = 0.0;
      for (int d = 0; d < slots_per_pair; ++d) {
        k += sk[i * static_cast<std::size_t>(slots_per_pair) + static_cast<std::size_t>(d)];
        t += stt[i * static_cast<std::size_t>(slots_per_pair) + static_cast<std::size_t>(d)];
      }
      out[i] = {k / count, t / count};
    }
  }

  // The variance maps of image x (MATH §4: the same-position recursion of the pair (x, x), whose
  // pre-activations are the variances), on the device, into sc.var.
  void variance_maps(const data::ImageView& x, kernel::SelfChain& sc) {
    const auto& shape = net.input_shape();
    const auto& l = lines[0];
    const cl_int table[kSlotInts] = {0, 0, l[0], l[1], l[2], l[3], 0, 0};
    check(clEnqueueWriteBuffer(dev.queue, slot_table.get(), CL_TRUE, 0, sizeof table, table, 0, nullptr, nullptr),
          "clEnqueueWriteBuffer");
    check(clEnqueueWriteBuffer(dev.queue, images.get(), CL_TRUE, 0,
                               static_cast<std::size_t>(shape.channels * shape.height * shape.width) * 8, x.data, 0,
                               nullptr, nullptr),
          "clEnqueueWriteBuffer");
    const cl_long st = stride, vs = var_stride;
    const cl_int h = static_cast<cl_int>(shape.height), w = static_cast<cl_int>(shape.width);
    set_args(k_diag_input, a_k, a_t, slot_table, images, st, static_cast<cl_int>(shape.channels), h, w);
    launch(k_diag_input, static_cast<std::size_t>(h * w), 1, local_map);
    for (const Step& s : steps) {
      set_args(k_diag_layer, a_k, a_t, c_k, c_t, slot_table, var, st, s.ih, s.iw, s.oh, s.ow, s.p, s.pad, s.scale,
               s.bias, s.act, vs, s.var_offset, static_cast<cl_int>(s.nonlinear));
      launch(k_diag_layer, static_cast<std::size_t>(s.oh) * static_cast<std::size_t>(s.ow), 1, local_map);
      std::swap(a_k, c_k);
      std::swap(a_t, c_t);
    }
    std::vector<double> record(static_cast<std::size_t>(std::max<std::int64_t>(var_stride, 1)));
    check(clEnqueueReadBuffer(dev.queue, var.get(), CL_TRUE, 0, record.size() * 8, record.data(), 0, nullptr, nullptr),
          "clEnqueueReadBuffer");
    const auto& stages = net.stages();
    for (std::size_t s = 0; s < stages.size(); ++s)
      if (stages[s].spatial_nonlinearity())
        sc.var[s].assign(record.begin() + var_offset[s],
                         record.begin() + var_offset[s] + stages[s].h_in * stages[s].w_in);
  }

  // The dense head on the host (kernel::apply_head, shared with the CPU engines). With `record` (the pair
  // (x, x)) the head variances are the pre-activations themselves and are kept.
  [[nodiscard]] KernelValue head(KernelValue v, const kernel::SelfChain& sx, const kernel::SelfChain& sx2,
                                 kernel::SelfChain* record = nullptr) const {
    return kernel::apply_head(net.head_layers(), v, sx.head_var.data(), sx2.head_var.data(),
                              record != nullptr ? record->head_var.data() : nullptr);
  }
};

PairExecutor::PairExecutor(const Network& net, const Device& device, std::int64_t max_batch,
                           std::function<void(const std::string&)> log)
    : impl_(std::make_unique<Impl>(net, device.state())), log_(std::move(log)) {
  Impl& m = *impl_;
  DeviceState& dev = device.state();
  m.diag = net.diagonal_only();
  m.slots_per_pair = m.diag ? 1 : net.rotations();
  for (const Stage& st : net.stages())
    if (st.spec.kind == LayerKind::avgpool || st.spec.kind == LayerKind::res || st.spec.kind == LayerKind::res_end)
      throw InvalidArgument("GPU executor: layer '" + st.spec.token +
                            "' (avgpool, res) has no device kernel yet; use --device cpu for this architecture");
  const auto elements = group::elements(net.group());
  for (int d = 0; d < m.slots_per_pair; ++d) {  // one block B_h per element h of G (one, h = e, for a CNN)
    // The CPU engine's window lines of block h (pass A moves t' along A_h's first column, pass B its second).
    const auto l = kernel::box_lines(elements[static_cast<std::size_t>(d)]);
    m.lines.push_back({l[0].dv, l[0].sign, l[1].dv, l[1].sign});
  }
  const auto& stages = net.stages();
  m.var_offset.assign(stages.size(), 0);
  for (std::size_t s = 0; s < net.readout_stage(); ++s)
    if (stages[s].spatial_nonlinearity()) {
      m.var_offset[s] = m.var_stride;
      m.var_stride += stages[s].h_in * stages[s].w_in;
    }
  std::int64_t h = net.input_shape().height, w = net.input_shape().width;
  m.stride = m.diag ? h * w : 1;
  for (std::size_t s = 0; s < net.readout_stage(); ++s) {
    const Stage& st = stages[s];
    if (!kernel::is_spatial_linear(st.spec.kind)) continue;
    Step step;
    step.ih = static_cast<cl_int>(st.h_in);
    step.iw = static_cast<cl_int>(st.w_in);
    step.oh = static_cast<cl_int>(st.h_out);
    step.ow = static_cast<cl_int>(st.w_out);
    step.p = st.p;
    step.pad = pad_code(st.spec.pad);
    step.scale = st.w2 / static_cast<double>(st.q * st.q);
    step.bias = st.b2;
    step.first = st.in_state == kernel::StateKind::input;
    if (s + 1 < net.readout_stage() && stages[s + 1].spatial_nonlinearity()) {
      step.act = act_code(stages[s + 1].spec.kind);
      step.nonlinear = true;
      step.var_offset = m.var_offset[s + 1];
    }
    const std::int64_t in_pixels = st.h_in * st.w_in;
    if (!m.diag) m.stride = std::max(m.stride, in_pixels * in_pixels);
    m.steps.push_back(step);
    h = st.h_out;
    w = st.w_out;
  }
  if (!m.diag && m.steps.empty()) throw InvalidArgument("GPU executor: a pooled network needs a spatial layer");
  if (m.stride > std::numeric_limits<cl_int>::max())
    throw InvalidArgument("GPU executor: a block of " + std::to_string(m.stride) +
                          " entries exceeds the kernels' 32-bit index range (images up to 215x215 pixels)");
  if (!m.steps.empty()) m.steps.back().last = true;
  m.final_n = m.diag ? h * w : h * w * h * w;
  m.k_pass_a = dev.kernel("pass_a");
  m.k_pass_b = dev.kernel("pass_b");
  m.k_diag_input = dev.kernel("diag_input");
  m.k_diag_layer = dev.kernel("diag_layer");
  m.k_reduce = dev.kernel("reduce_slots");
  // Work-group sizes: powers of two the device and each kernel accept.
  std::size_t limit = dev.info.max_work_group;
  for (cl_kernel k : {m.k_pass_b, m.k_reduce}) {
    std::size_t wg = 0;
    check(clGetKernelWorkGroupInfo(k, dev.device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, nullptr),
          "clGetKernelWorkGroupInfo");
    limit = std::min(limit, wg);
  }
  m.local = 1;
  while (m.local * 2 <= std::min<std::size_t>(limit, 256)) m.local *= 2;
  m.local_map = std::min<std::size_t>(m.local, 64);
  m.groups = m.diag ? 1 : static_cast<std::int64_t>(round_up(static_cast<std::size_t>(m.final_n), m.local) / m.local);
  // Batch: as many pairs as ~60 % of the device memory holds, each buffer within the allocation limit.
  const std::int64_t per_pair = m.pair_bytes();
  const auto by_memory = static_cast<std::int64_t>(0.6 * static_cast<double>(dev.info.global_mem)) / per_pair;
  const auto by_alloc = static_cast<std::int64_t>(dev.info.max_alloc) / (8 * m.slots_per_pair * m.stride);
  // Slots are the second NDRange dimension, one work-group row each: NVIDIA's OpenCL maps it onto a grid
  // dimension of at most 65535 blocks.
  const std::int64_t by_grid = 65535 / m.slots_per_pair;
  batch_ = std::min({by_memory, by_alloc, by_grid});
  if (max_batch > 0) batch_ = std::min(batch_, max_batch);
  if (batch_ < 1)
    throw DeviceError("OpenCL device '" + dev.info.name + "' has too little memory for one pair of this network (" +
                      std::to_string(per_pair >> 20) + " MiB needed, " + std::to_string(dev.info.global_mem >> 20) +
                      " MiB on the device)");
}

PairExecutor::~PairExecutor() = default;

std::vector<KernelValue> PairExecutor::evaluate(std::span<const PairRef> pairs) {
  Impl& m = *impl_;
  const auto& net = m.net;
  for (const PairRef& p : pairs) {
    if (!(p.x.shape() == net.input_shape()) || !(p.x2.shape() == net.input_shape()))
      throw InvalidArgument("GPU executor: image shape does not match the network input");
    if (p.sx == nullptr || p.sx2 == nullptr || p.sx->var.size() != net.stages().size() ||
        p.sx2->var.size() != net.stages().size())
      throw InvalidArgument("GPU executor: a pair lacks the self chain of this network");
  }
  std::vector<KernelValue> out(pairs.size());
  std::size_t done = 0;
  while (done < pairs.size()) {
    const std::size_t n = std::min(pairs.size() - done, static_cast<std::size_t>(batch_));
    if (!with_memory_retry([&] { m.run(pairs.subspan(done, n), out.data() + done); })) continue;
    for (std::size_t i = done; i < done + n; ++i) out[i] = m.head(out[i], *pairs[i].sx, *pairs[i].sx2);
    done += n;
  }
  return out;
}

bool PairExecutor::with_memory_retry(const std::function<void()>& work) {
  Impl& m = *impl_;
  try {
    if (m.allocated != batch_) m.allocate(batch_);
    work();
    return true;
  } catch (const ClError& e) {
    if (!out_of_memory(e.code)) throw;
    clFinish(m.dev.queue);
    if (batch_ == 1)
      throw DeviceError("OpenCL device '" + m.dev.info.name + "' is out of memory even for one pair: " + e.what());
    const std::int64_t smaller = std::max<std::int64_t>(1, batch_ / 2);
    if (log_) log_("eqntk: the GPU ran out of memory with " + std::to_string(batch_) + " pairs per batch; using " +
                   std::to_string(smaller));
    batch_ = smaller;
    m.allocated = 0;
    return false;
  }
}

kernel::SelfChain PairExecutor::self_chain(const data::ImageView& x) {
  Impl& m = *impl_;
  if (!(x.shape() == m.net.input_shape()))
    throw InvalidArgument("GPU executor: image shape does not match the network input");
  kernel::SelfChain sc;
  sc.var.resize(m.net.stages().size());
  sc.head_var.assign(m.net.stages().size(), 0.0);
  const PairRef self{x, &sc, x, &sc};
  KernelValue pooled;
  while (!with_memory_retry([&] {
    m.variance_maps(x, sc);
    m.run(std::span(&self, 1), &pooled);
  })) {
  }
  sc.self = m.head(pooled, sc, sc, &sc);
  return sc;
}

WorkPerEntryLayer PairExecutor::work_per_entry_layer(int q) {
  // Per output entry of a layer, K and Θ: pass A reads q values of each (2q loads, 2(q−1) adds) and
  // stores 2; pass B the same, plus the epilogue (2 multiplies, 3 adds) and 2 stores. The dual
  // activation (relu: ~25 operations incl. acos, sqrt) comes on top for layers followed by one.
  const double qd = q;
  return {4 * (qd - 1) + 5, 8 * (4 * qd + 4)};
}

kernel::GramPair gram_matrices(const Network& net, const data::ImageSet& x1, const data::ImageSet* x2,
                               const Device& device, std::int64_t max_batch,
                               const std::function<void(const std::string&)>& log) {
  const bool symmetric = x2 == nullptr;
  const data::ImageSet& y = symmetric ? x1 : *x2;
  if (!(x1.shape == net.input_shape()) || !(y.shape == net.input_shape()))
    throw InvalidArgument("gram_matrices: image shape does not match the network input");
  PairExecutor exec(net, device, max_batch, log);
  std::vector<kernel::SelfChain> c1, c2;
  for (std::int64_t i = 0; i < x1.count; ++i) c1.push_back(exec.self_chain(x1.view(i)));
  if (!symmetric)
    for (std::int64_t i = 0; i < y.count; ++i) c2.push_back(exec.self_chain(y.view(i)));
  const auto& cy = symmetric ? c1 : c2;
  kernel::GramPair g{x1.count, y.count, std::vector<double>(static_cast<std::size_t>(x1.count * y.count)), {}};
  g.ntk.resize(g.nngp.size());
  std::vector<PairRef> pairs;
  std::vector<std::pair<std::int64_t, std::int64_t>> where;
  const auto flush = [&] {
    const auto v = exec.evaluate(pairs);
    for (std::size_t k = 0; k < v.size(); ++k) {
      const auto [i, j] = where[k];
      g.nngp[static_cast<std::size_t>(i * y.count + j)] = v[k].nngp;
      g.ntk[static_cast<std::size_t>(i * y.count + j)] = v[k].ntk;
      if (symmetric) {
        g.nngp[static_cast<std::size_t>(j * y.count + i)] = v[k].nngp;
        g.ntk[static_cast<std::size_t>(j * y.count + i)] = v[k].ntk;
      }
    }
    pairs.clear();
    where.clear();
  };
  for (std::int64_t i = 0; i < x1.count; ++i)
    for (std::int64_t j = 0; j < (symmetric ? i + 1 : y.count); ++j) {
      // Same argument order as kernel::gram_matrices: K(x1_i, y_j).
      pairs.push_back({x1.view(i), &c1[static_cast<std::size_t>(i)], y.view(j), &cy[static_cast<std::size_t>(j)]});
      where.emplace_back(i, j);
      if (static_cast<std::int64_t>(pairs.size()) >= 4 * exec.batch()) flush();
    }
  if (!pairs.empty()) flush();
  return g;
}

}  // namespace eqntk::gpu
