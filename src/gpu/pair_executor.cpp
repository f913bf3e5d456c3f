#include "eqntk/gpu/pair_executor.hpp"

#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/head.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <limits>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>

#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/dual.hpp"
#include "eqntk/kernel/plan.hpp"
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

using Units = std::vector<kernel::Unit>;

// Tiles of a window pass (kernels.cl, "The window passes"): t × tr outputs over dims 2 × 3 per work-group;
// `groups` work-groups per slot; `region` doubles of local memory per array (the ring of window planes).
struct Tiling {
  cl_int t = 1, tr = 1;
  std::size_t groups = 1, region = 1;
  std::size_t local = 1;  // work-group size: the smallest power of two ≥ t · tr
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// How a chain of units is run (PairExecutor::Impl::chain).
enum class Layout {
  full,  // blocks B_h(t, t') of h·w × h·w entries per slot
  diag,  // same-position maps c(t) of h·w entries per slot (flatten without avgpool; variance maps)
};

}  // namespace

struct PairExecutor::Impl {
  const Network& net;
  DeviceState& dev;
  kernel::Plan plan;
  bool diag = false;  // flatten readout without avgpool: same-position chain, one slot per pair
  int slots_per_pair = 1;
  std::vector<std::int64_t> var_offset;  // per stage (spatial nonlinearities), in an image's var record
  std::int64_t var_stride = 0;
  std::int64_t stride = 1;     // doubles per slot in the block buffers
  std::int64_t groups = 1;     // pass-B work-groups per slot of a fused last layer
  bool fuse_pool = false;      // pairs: the last Linear feeds its nonlinearity and the pooled sums directly
  std::size_t local = 64;      // work-group size of the reductions (a power of two)
  std::size_t local_map = 64;  // work-group size of the map kernels
  std::vector<std::array<cl_int, 4>> lines;  // per block: dvA, sgnA, dvB, sgnB
  std::size_t region_budget = 16384;          // bytes of local memory per ring of a marching window pass
  bool marching = false;                      // window passes through local memory (DeviceState::local_passes)
  cl_kernel k_pass_a = nullptr, k_pass_b = nullptr, k_diag_input = nullptr, k_diag_layer = nullptr,
            k_reduce = nullptr, k_activate = nullptr, k_record = nullptr, k_avgpool = nullptr, k_add = nullptr;
  // Device buffers for `allocated` pairs: the state (a), pass A's output (b), the next state (c), the
  // saved inputs of the res blocks (K, Θ per slot).
  std::int64_t allocated = 0;
  Buffer a_k, a_t, b_k, b_t, c_k, c_t, part_k, part_t, sum_k, sum_t, slot_table, images, var;
  std::vector<Buffer> saved;

  Impl(const Network& n, DeviceState& d) : net(n), dev(d), plan(kernel::compile(n)) {}
  ~Impl() {
    for (cl_kernel k : {k_pass_a, k_pass_b, k_diag_input, k_diag_layer, k_reduce, k_activate, k_record, k_avgpool, k_add})
      if (k != nullptr) clReleaseKernel(k);
  }

  [[nodiscard]] std::int64_t image_size() const {
    const auto& s = net.input_shape();
    return s.channels * s.height * s.width;
  }

  [[nodiscard]] std::int64_t pair_bytes() const {
    const std::int64_t s = slots_per_pair;
    return 8 * (s * stride * ((diag ? 4 : 6) + 2 * plan.saved_slots) + 2 * s * groups + 2 * s) + 4 * kSlotInts * s +
           2 * 8 * (image_size() + var_stride);
  }

  void allocate(std::int64_t pairs) {
    const std::int64_t slots = pairs * slots_per_pair;
    const auto bytes = [&](std::int64_t doubles) { return static_cast<std::size_t>(doubles) * 8; };
    for (Buffer* b : {&a_k, &a_t, &b_k, &b_t, &c_k, &c_t, &part_k, &part_t, &sum_k, &sum_t, &slot_table, &images, &var})
      b->reset();
    saved.clear();
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
    for (int s = 0; s < 2 * plan.saved_slots; ++s) saved.push_back(dev.buffer(bytes(slots * stride)));
    sum_k = dev.buffer(bytes(slots));
    sum_t = dev.buffer(bytes(slots));
    slot_table = dev.buffer(static_cast<std::size_t>(slots * kSlotInts) * sizeof(cl_int));
    const std::int64_t max_images = 2 * pairs;  // distinct images of a batch
    images = dev.buffer(bytes(max_images * image_size()));
    var = dev.buffer(bytes(max_images * std::max<std::int64_t>(var_stride, 1)));
    allocated = pairs;
  }

  // The tiles of pass A (or B) of layer l: t2 × t3 outputs over dims 2, 3 (at most `local` and max_tile, dim 3
  // first, a ring of q window planes within the region budget; work-groups of the next power of two), the
  // same for every block, with as many work-groups as the block that needs the most (the others return).
  [[nodiscard]] Tiling tiling(const kernel::unit::Linear& l, bool pass_b) const {
    const std::int64_t p = l.p, q = 2 * p + 1;
    std::array<std::int64_t, 4> most{};
    const auto dims = [&](const std::array<cl_int, 4>& line) {
      const int dv = pass_b ? line[2] : line[0];
      return pass_b ? std::array<std::int64_t, 4>{l.oh, l.ow, l.oh, l.ow}
                    : std::array<std::int64_t, 4>{l.oh, l.iw, dv == 2 ? l.oh : l.ih, dv == 3 ? l.ow : l.iw};
    };
    for (const auto& line : lines) {
      const auto n = dims(line);
      for (std::size_t d = 0; d < 4; ++d) most[d] = std::max(most[d], n[d]);
    }
    const auto loc = static_cast<std::int64_t>(local);
    const std::int64_t cap = dev.max_tile > 0 ? dev.max_tile : loc;
    std::int64_t t3 = std::min({most[3], loc, cap}), t2 = std::min({most[2], loc / t3, cap});
    const auto plane = [&] { return std::max((t2 + 2 * p) * t3, t2 * (t3 + 2 * p)); };
    while (q * plane() * 8 > static_cast<std::int64_t>(region_budget) && (t2 > 1 || t3 > 1)) {
      if (t2 > 1) t2 = (t2 + 1) / 2;
      else t3 = (t3 + 1) / 2;
    }
    Tiling t;
    t.t = static_cast<cl_int>(t2);
    t.tr = static_cast<cl_int>(t3);
    t.groups = 0;
    for (const auto& line : lines) {
      const auto n = dims(line);
      const int dv = pass_b ? line[2] : line[0], r = 5 - dv, lead = pass_b ? 1 : 0;
      const std::int64_t tv = dv == 2 ? t2 : t3, tr = dv == 2 ? t3 : t2;
      const auto g = n[static_cast<std::size_t>(1 - lead)] * ceil_div(n[static_cast<std::size_t>(dv)], tv) *
                     ceil_div(n[static_cast<std::size_t>(r)], tr);
      t.groups = std::max(t.groups, static_cast<std::size_t>(g));
    }
    t.region = static_cast<std::size_t>(q * plane());
    // At least a warp (32) unless `local` is smaller: narrower groups waste a GPU's SIMD lanes, and PoCL
    // 3.1 miscompiles pass_b_local's reduction for a work-group of 2.
    t.local = std::min<std::size_t>(local, 32);
    while (t.local < static_cast<std::size_t>(t2 * t3)) t.local *= 2;
    return t;
  }

  void launch(cl_kernel k, std::size_t n, std::size_t slots, std::size_t l) const {
    const std::size_t global[2] = {round_up(std::max<std::size_t>(n, 1), l), slots};
    const std::size_t loc[2] = {l, 1};
    check(clEnqueueNDRangeKernel(dev.queue, k, 2, nullptr, global, loc, 0, nullptr, nullptr), "clEnqueueNDRangeKernel");
  }

  void write(const Buffer& b, std::size_t bytes, const void* data) const {
    if (bytes > 0)
      check(clEnqueueWriteBuffer(dev.queue, b.get(), CL_TRUE, 0, bytes, data, 0, nullptr, nullptr),
            "clEnqueueWriteBuffer");
  }

  // Runs the plan's units on `slots` slots (their table, images and — unless `record` — variance records
  // already on the device) and leaves each slot's readout sum in sum_k/sum_t; returns the number of
  // entries each slot's sum is over. With `record` (self chains: image a = image b in every slot), each
  // nonlinearity's variance map is first taken from the pre-activation (the e-block's same-position
  // entries) and written to image a's record.
  std::int64_t chain(std::size_t slots, Layout layout, bool record) {
    const Units& units = plan.units;
    const cl_long st = stride, vs = var_stride;
    const cl_int channels = static_cast<cl_int>(net.input_shape().channels);
    const bool on_diag = layout == Layout::diag;
    // Fusing a nonlinearity into the layer before it needs its variance map before the layer runs.
    const bool fuse_act = !record || on_diag;
    cl_int h = static_cast<cl_int>(net.input_shape().height), w = static_cast<cl_int>(net.input_shape().width);
    const auto entries = [&] { return on_diag ? h * w : h * w * h * w; };
    const auto swap_state = [&] {
      std::swap(a_k, c_k);
      std::swap(a_t, c_t);
    };
    if (on_diag) {  // K⁰(t, t) of the two images, Θ⁰ = 0
      set_args(k_diag_input, a_k, a_t, slot_table, images, st, channels, h, w);
      launch(k_diag_input, static_cast<std::size_t>(h * w), slots, local_map);
    }
    bool pooled = false;  // the readout sums were formed by the last layer (partials per work-group)
    for (std::size_t u = 0; u < units.size(); ++u) {
      if (const auto* l = std::get_if<kernel::unit::Linear>(&units[u])) {
        // A nonlinearity right after the layer runs in pass B's epilogue.
        const auto* next = u + 1 < units.size() ? std::get_if<kernel::unit::Activation>(&units[u + 1]) : nullptr;
        if (!fuse_act) next = nullptr;
        const cl_int act = next != nullptr ? act_code(next->kind) : 0;
        const cl_long voff = next != nullptr ? var_offset[next->stage] : 0;
        const cl_int ih = static_cast<cl_int>(l->ih), iw = static_cast<cl_int>(l->iw), oh = static_cast<cl_int>(l->oh),
                     ow = static_cast<cl_int>(l->ow), pad = pad_code(l->pad);
        const cl_double scale = l->scale, bias = l->bias;
        if (on_diag) {
          set_args(k_diag_layer, a_k, a_t, c_k, c_t, slot_table, var, st, ih, iw, oh, ow, l->p, pad, scale, bias, act, vs,
                   voff, static_cast<cl_int>(record && next != nullptr));
          launch(k_diag_layer, static_cast<std::size_t>(oh * ow), slots, local_map);
          swap_state();
        } else {
          const bool pool = fuse_pool && !record && u == plan.fusable_last;
          if (marching) {
            const Tiling ta = tiling(*l, false), tb = tiling(*l, true);
            set_args(k_pass_a, a_k, a_t, b_k, b_t, slot_table, images, Local{ta.region * 8}, Local{ta.region * 8}, st,
                     static_cast<cl_int>(l->first), channels, ih, iw, oh, ow, l->p, pad, ta.t, ta.tr);
            launch(k_pass_a, ta.groups * ta.local, slots, ta.local);
            set_args(k_pass_b, b_k, b_t, c_k, c_t, slot_table, var, part_k, part_t, Local{tb.region * 8},
                     Local{tb.region * 8}, Local{tb.local * 8}, Local{tb.local * 8}, st, static_cast<cl_int>(l->first),
                     ih, iw, oh, ow, l->p, pad, scale, bias, act, vs, voff, static_cast<cl_int>(pool), tb.t, tb.tr);
            launch(k_pass_b, tb.groups * tb.local, slots, tb.local);
          } else {
            set_args(k_pass_a, a_k, a_t, b_k, b_t, slot_table, images, st, static_cast<cl_int>(l->first), channels, ih,
                     iw, oh, ow, l->p, pad);
            const std::size_t mid = static_cast<std::size_t>(oh) * static_cast<std::size_t>(iw) *
                                    static_cast<std::size_t>(std::max(oh * iw, ih * ow));
            launch(k_pass_a, mid, slots, local_map);
            set_args(k_pass_b, b_k, b_t, c_k, c_t, slot_table, var, part_k, part_t, Local{local * 8}, Local{local * 8},
                     st, static_cast<cl_int>(l->first), ih, iw, oh, ow, l->p, pad, scale, bias, act, vs, voff,
                     static_cast<cl_int>(pool));
            launch(k_pass_b, static_cast<std::size_t>(oh * ow) * static_cast<std::size_t>(oh * ow), slots, local);
          }
          if (!pool) swap_state();
          pooled = pool;
        }
        h = oh;
        w = ow;
        if (next != nullptr) ++u;  // done in the epilogue
        if (pooled) u = units.size() - 2;  // on to the readout
      } else if (const auto* a = std::get_if<kernel::unit::Activation>(&units[u])) {
        const cl_long voff = var_offset[a->stage];
        if (record) {
          set_args(k_record, a_k, slot_table, var, st, h * w, on_diag ? 1 : h * w + 1, vs, voff);
          launch(k_record, static_cast<std::size_t>(h * w), slots, local_map);
        }
        set_args(k_activate, a_k, a_t, slot_table, var, st, h * w, static_cast<cl_int>(on_diag), act_code(a->kind), vs,
                 voff);
        launch(k_activate, static_cast<std::size_t>(entries()), slots, local_map);
      } else if (const auto* p = std::get_if<kernel::unit::AvgPool>(&units[u])) {
        const cl_int oh = static_cast<cl_int>(p->oh), ow = static_cast<cl_int>(p->ow);
        const double inv = 1.0 / (static_cast<double>(p->s) * p->s * p->s * p->s);
        set_args(k_avgpool, a_k, a_t, c_k, c_t, st, h, w, oh, ow, static_cast<cl_int>(p->s), inv);
        launch(k_avgpool, static_cast<std::size_t>(oh * ow) * static_cast<std::size_t>(oh * ow), slots, local_map);
        swap_state();
        h = oh;
        w = ow;
      } else if (const auto* b = std::get_if<kernel::unit::ResBegin>(&units[u])) {
        const std::size_t bytes = slots * static_cast<std::size_t>(stride) * 8;
        const auto slot = static_cast<std::size_t>(b->slot);
        check(clEnqueueCopyBuffer(dev.queue, a_k.get(), saved[2 * slot].get(), 0, 0, bytes, 0, nullptr, nullptr),
              "clEnqueueCopyBuffer");
        check(clEnqueueCopyBuffer(dev.queue, a_t.get(), saved[2 * slot + 1].get(), 0, 0, bytes, 0, nullptr, nullptr),
              "clEnqueueCopyBuffer");
      } else if (const auto* e = std::get_if<kernel::unit::ResEnd>(&units[u])) {
        const auto slot = static_cast<std::size_t>(e->slot);
        set_args(k_add, a_k, a_t, saved[2 * slot], saved[2 * slot + 1], st, entries());
        launch(k_add, static_cast<std::size_t>(entries()), slots, local_map);
      } else if (const auto* r = std::get_if<kernel::unit::Readout>(&units[u])) {
        const cl_long n = pooled ? groups : (on_diag || r->kind == LayerKind::flatten) ? h * w : h * w * h * w;
        const cl_long step = !on_diag && r->kind == LayerKind::flatten ? h * w + 1 : 1;
        if (pooled) {
          set_args(k_reduce, part_k, part_t, sum_k, sum_t, Local{local * 8}, Local{local * 8}, n, n, step);
        } else {
          set_args(k_reduce, a_k, a_t, sum_k, sum_t, Local{local * 8}, Local{local * 8}, st, n, step);
        }
        launch(k_reduce, local, slots, local);
        return (on_diag || r->kind == LayerKind::flatten) ? h * w : h * w * h * w;
      }
    }
    throw DeviceError("GPU executor: the plan has no readout");  // kernel::compile always ends with one
  }

  // Reads the readout sums of `pairs` pairs of `per_pair` slots each: the mean over the pair's slots and
  // `entries` entries per slot (gpool/gap: (1/|G|) Σ_h mean_{t,t'} B_h, MATH §5.1, §10; flatten: mean over
  // positions of the e-block).
  void readout(std::size_t pairs, int per_pair, std::int64_t entries, KernelValue* out) const {
    const std::size_t slots = pairs * static_cast<std::size_t>(per_pair);
    std::vector<double> sk(slots), stt(slots);
    check(clEnqueueReadBuffer(dev.queue, sum_k.get(), CL_FALSE, 0, slots * 8, sk.data(), 0, nullptr, nullptr),
          "clEnqueueReadBuffer");
    check(clEnqueueReadBuffer(dev.queue, sum_t.get(), CL_TRUE, 0, slots * 8, stt.data(), 0, nullptr, nullptr),
          "clEnqueueReadBuffer");
    const double count = static_cast<double>(per_pair) * static_cast<double>(entries);
    for (std::size_t i = 0; i < pairs; ++i) {
      double k = 0.0, t = 0.0;
      for (int d = 0; d < per_pair; ++d) {
        k += sk[i * static_cast<std::size_t>(per_pair) + static_cast<std::size_t>(d)];
        t += stt[i * static_cast<std::size_t>(per_pair) + static_cast<std::size_t>(d)];
      }
      out[i] = {k / count, t / count};
    }
  }

  // The slot table of pairs of images (ia, ib): one slot per block.
  [[nodiscard]] std::vector<cl_int> slot_rows(const std::vector<std::pair<cl_int, cl_int>>& pairs, int per_pair) const {
    std::vector<cl_int> table;
    table.reserve(pairs.size() * static_cast<std::size_t>(per_pair * kSlotInts));
    for (std::size_t i = 0; i < pairs.size(); ++i)
      for (int d = 0; d < per_pair; ++d) {
        const auto& l = lines[static_cast<std::size_t>(d)];
        table.insert(table.end(),
                     {pairs[i].first, pairs[i].second, l[0], l[1], l[2], l[3], static_cast<cl_int>(i), static_cast<cl_int>(d)});
      }
    return table;
  }

  // Runs one batch (pairs.size() ≤ allocated) and writes the pooled values per pair.
  void run(std::span<const PairRef> pairs, KernelValue* out) {
    const std::int64_t isize = image_size();
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
    std::vector<std::pair<cl_int, cl_int>> ids;
    for (const PairRef& p : pairs) {
      const cl_int ia = add_image(p.x, p.sx);
      ids.emplace_back(ia, add_image(p.x2, p.sx2));
    }
    const std::vector<cl_int> table = slot_rows(ids, slots_per_pair);
    write(slot_table, table.size() * sizeof(cl_int), table.data());
    write(images, img.size() * 8, img.data());
    write(var, vars.size() * 8, vars.data());
    const std::size_t slots = pairs.size() * static_cast<std::size_t>(slots_per_pair);
    const std::int64_t entries = chain(slots, diag ? Layout::diag : Layout::full, false);
    readout(pairs.size(), slots_per_pair, entries, out);
  }

  // The self chain of image x (MATH §4, §10): its variance maps, into sc.var, and the pooled K(x, x),
  // Θ(x, x) before the head. With an avgpool the pair (x, x) runs the full recursion, recording each
  // variance map from the e-block; otherwise the same-position chain of (x, x) records them (its
  // pre-activations are the variances) and, unless the readout is a flatten, the pair then runs on blocks.
  KernelValue self_pair(const data::ImageView& x, kernel::SelfChain& sc) {
    write(images, static_cast<std::size_t>(image_size()) * 8, x.data);
    KernelValue pooled;
    if (plan.self_full) {
      const auto table = slot_rows({{0, 0}}, slots_per_pair);
      write(slot_table, table.size() * sizeof(cl_int), table.data());
      readout(1, slots_per_pair, chain(static_cast<std::size_t>(slots_per_pair), Layout::full, true), &pooled);
    } else {
      const auto one = slot_rows({{0, 0}}, 1);
      write(slot_table, one.size() * sizeof(cl_int), one.data());
      readout(1, 1, chain(1, Layout::diag, true), &pooled);
      if (!diag) {
        const auto table = slot_rows({{0, 0}}, slots_per_pair);
        write(slot_table, table.size() * sizeof(cl_int), table.data());
        readout(1, slots_per_pair, chain(static_cast<std::size_t>(slots_per_pair), Layout::full, false), &pooled);
      }
    }
    std::vector<double> record(static_cast<std::size_t>(std::max<std::int64_t>(var_stride, 1)));
    check(clEnqueueReadBuffer(dev.queue, var.get(), CL_TRUE, 0, record.size() * 8, record.data(), 0, nullptr, nullptr),
          "clEnqueueReadBuffer");
    const auto& stages = net.stages();
    for (std::size_t s = 0; s < stages.size(); ++s)
      if (stages[s].spatial_nonlinearity())
        sc.var[s].assign(record.begin() + var_offset[s], record.begin() + var_offset[s] + stages[s].h_in * stages[s].w_in);
    return pooled;
  }

  // The dense head on the host (kernel::apply_head, shared with the CPU engines). With `record` (the pair
  // (x, x)) the head variances are the pre-activations themselves and are kept.
  [[nodiscard]] KernelValue head(KernelValue v, const kernel::SelfChain& sx, const kernel::SelfChain& sx2,
                                 kernel::SelfChain* record = nullptr) const {
    return kernel::apply_head(plan.head, v, sx.head_var.data(), sx2.head_var.data(),
                              record != nullptr ? record->head_var.data() : nullptr);
  }
};

PairExecutor::PairExecutor(const Network& net, const Device& device, std::int64_t max_batch,
                           std::function<void(const std::string&)> log)
    : impl_(std::make_unique<Impl>(net, device.state())), log_(std::move(log)) {
  Impl& m = *impl_;
  DeviceState& dev = device.state();
  const kernel::Plan& plan = m.plan;
  m.diag = plan.diagonal_only;
  m.slots_per_pair = m.diag ? 1 : plan.blocks;
  if (!m.diag && plan.linear_units() == 0)
    throw InvalidArgument("GPU executor: a pooled network needs a spatial layer");
  const auto elements = group::elements(plan.group);
  for (int d = 0; d < std::max(m.slots_per_pair, 1); ++d) {  // one block B_h per element h of G (h = e first)
    // The CPU engine's window lines of block h (pass A moves t' along A_h's first column, pass B its second).
    const auto l = kernel::box_lines(elements[static_cast<std::size_t>(d)]);
    m.lines.push_back({l[0].dv, l[0].sign, l[1].dv, l[1].sign});
  }
  const auto& stages = net.stages();
  m.var_offset.assign(stages.size(), 0);
  for (const kernel::Unit& u : plan.units)
    if (const auto* a = std::get_if<kernel::unit::Activation>(&u)) {
      m.var_offset[a->stage] = m.var_stride;
      m.var_stride += a->h * a->w;
    }
  m.stride = m.diag ? plan.max_pixels : plan.max_pixels * plan.max_pixels;
  if (m.stride > std::numeric_limits<cl_int>::max())
    throw InvalidArgument("GPU executor: a block of " + std::to_string(m.stride) +
                          " entries exceeds the kernels' 32-bit index range (images up to 215x215 pixels)");
  m.marching = dev.local_passes;
  m.k_pass_a = dev.kernel(m.marching ? "pass_a_local" : "pass_a");
  m.k_pass_b = dev.kernel(m.marching ? "pass_b_local" : "pass_b");
  m.k_diag_input = dev.kernel("diag_input");
  m.k_diag_layer = dev.kernel("diag_layer");
  m.k_reduce = dev.kernel("reduce_slots");
  m.k_activate = dev.kernel("activate");
  m.k_record = dev.kernel("record_var");
  m.k_avgpool = dev.kernel("avgpool");
  m.k_add = dev.kernel("add_saved");
  // Work-group sizes: powers of two the device and each kernel accept.
  std::size_t limit = dev.info.max_work_group;
  for (cl_kernel k : {m.k_pass_a, m.k_pass_b, m.k_reduce}) {
    std::size_t wg = 0;
    check(clGetKernelWorkGroupInfo(k, dev.device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, nullptr),
          "clGetKernelWorkGroupInfo");
    limit = std::min(limit, wg);
  }
  m.local = 1;
  while (m.local * 2 <= std::min<std::size_t>(limit, 256)) m.local *= 2;
  m.local_map = std::min<std::size_t>(m.local, 64);
  // Region arrays: two per pass, next to pass B's two reduction arrays, within a quarter of local memory each.
  m.region_budget = static_cast<std::size_t>(std::min<std::uint64_t>(dev.info.local_mem / 4, 16384));
  // The last Linear feeds the pooled sums directly (partial sums per work-group of pass B).
  if (!m.diag && plan.fusable_last != kernel::Plan::npos) {
    const auto& last = std::get<kernel::unit::Linear>(plan.units[plan.fusable_last]);
    m.fuse_pool = true;
    const auto n = static_cast<std::size_t>(last.oh * last.ow * last.oh * last.ow);
    m.groups = static_cast<std::int64_t>(m.marching ? m.tiling(last, true).groups : round_up(n, m.local) / m.local);
  }
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
  KernelValue pooled;
  while (!with_memory_retry([&] { pooled = m.self_pair(x, sc); })) {
  }
  sc.self = m.head(pooled, sc, sc, &sc);
  return sc;
}

WorkPerEntryLayer PairExecutor::work_per_entry_layer(int q, int tile) {
  // Per output entry of a layer, K and Θ: pass A reads q values of each (2q loads, 2(q−1) adds) and
  // stores 2; pass B the same, plus the epilogue (2 multiplies, 3 adds) and 2 stores. The dual
  // activation (relu: ~25 operations incl. acos, sqrt) comes on top for layers followed by one. Marching
  // through local memory, each pass loads (tile + q − 1)/tile values of each array per entry instead of q.
  const double qd = q, reads = tile > 0 ? (tile + qd - 1) / tile : qd;
  return {4 * (qd - 1) + 5, 8 * (4 * reads + 4)};
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
