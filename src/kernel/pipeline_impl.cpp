// The plane pipeline of pipeline.hpp. This file is compiled once per instruction-set level with
// EQNTK_ISA_NS naming the namespace (isa_baseline, isa_avx2, isa_avx512) and the matching -march flags.
#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/dual.hpp"
#include "pipeline.hpp"

#ifndef EQNTK_ISA_NS
#error "compile with -DEQNTK_ISA_NS=isa_<level>"
#endif

namespace eqntk::kernel::detail::EQNTK_ISA_NS {
namespace {

#include "dual_rows.inc"

inline std::int64_t wrap(std::int64_t v, std::int64_t n) {
  v %= n;
  return v < 0 ? v + n : v;
}

// out(o2, o3) += w · in(o2 + d2, o3 + d3) over an oh×ow output plane from an ih×iw input plane. Out-of-
// range sources are zero (same/valid) or wrap (circular).
inline void shift_axpy(double* __restrict out, std::int64_t oh, std::int64_t ow, const double* __restrict in,
                       std::int64_t ih, std::int64_t iw, std::int64_t d2, std::int64_t d3, bool circular, double w) {
  if (!circular && d3 == 0 && ow == iw) {
    // Rows are contiguous on both sides: one long run.
    const std::int64_t r0 = std::max<std::int64_t>(0, -d2), r1 = std::min<std::int64_t>(oh, ih - d2);
    if (r1 <= r0) return;
    double* o = out + r0 * ow;
    const double* s = in + (r0 + d2) * iw;
    const std::int64_t n = (r1 - r0) * ow;
    for (std::int64_t e = 0; e < n; ++e) o[e] += w * s[e];
    return;
  }
  const std::int64_t lo = std::max<std::int64_t>(0, -d3), hi = std::min<std::int64_t>(ow, iw - d3);
  for (std::int64_t o2 = 0; o2 < oh; ++o2) {
    std::int64_t s2 = o2 + d2;
    if (s2 < 0 || s2 >= ih) {
      if (!circular) continue;
      s2 = wrap(s2, ih);
    }
    double* __restrict orow = out + o2 * ow;
    const double* __restrict irow = in + s2 * iw;
    for (std::int64_t o3 = lo; o3 < hi; ++o3) orow[o3] += w * irow[o3 + d3];
    if (circular) {
      for (std::int64_t o3 = 0; o3 < std::min(lo, ow); ++o3) orow[o3] += w * irow[wrap(o3 + d3, iw)];
      for (std::int64_t o3 = std::max<std::int64_t>(hi, 0); o3 < ow; ++o3) orow[o3] += w * irow[wrap(o3 + d3, iw)];
    }
  }
}

// Source index of a moved dimension: o + off + move, with zero padding (−1 = skip) or wrapping.
inline std::int64_t source(std::int64_t o, std::int64_t off, std::int64_t move, std::int64_t n, bool circular) {
  std::int64_t s = o + off + move;
  if (s < 0 || s >= n) s = circular ? wrap(s, n) : -1;
  return s;
}

// Where a linear layer's input comes from.
struct Input {
  bool from_images = false;  // lift / first conv: K⁰ planes built from the two images on the fly
  const ImageView* x = nullptr;
  const ImageView* x2 = nullptr;
  double* k = nullptr;        // stored block (pre-activation until activated)
  double* t = nullptr;        // Θ block; equal to k while Θ = K (after a first layer, no nonlinearity yet)
  double* t_store = nullptr;  // where the activation writes Σ̇⊙Θ (may equal t, never k)
  LayerKind activation = LayerKind::id;  // nonlinearity to apply lazily, slab by slab
  const double* var1 = nullptr;
  const double* var2 = nullptr;
};

// Where a linear layer's output goes: stored, or straight into the pooled sums (after `activation`).
struct Output {
  bool pool = false;
  double* k = nullptr;
  double* t = nullptr;
  LayerKind activation = LayerKind::id;
  const double* var1 = nullptr;
  const double* var2 = nullptr;
  double sum_k = 0.0, sum_t = 0.0;
};

// Applies the pending nonlinearity to input slab ii (all jj planes), in place.
void activate_slab(Input& in, std::int64_t ii, std::int64_t ih, std::int64_t iw) {
  const std::int64_t plane = ih * iw;
  for (std::int64_t jj = 0; jj < iw; ++jj) {
    const std::int64_t p = ii * iw + jj;
    double* k = in.k + p * plane;
    const double* t = in.t + p * plane;
    dual_run(in.activation, in.var1[p], in.var2, k, t, k, in.t_store + p * plane, plane);
  }
}

void run_layer(const Stage& st, int delta, Input& in, Output& out, Workspace& ws) {
  const auto lines = box_lines(delta);
  const bool circular = st.spec.pad == Padding::circular;
  const std::int64_t off = st.spec.pad == Padding::valid ? st.p : 0;
  const std::int64_t ih = st.h_in, iw = st.w_in, oh = st.h_out, ow = st.w_out;
  // Pass A reduces dim 0 and lines[0].dv; pass B dim 1 and lines[1].dv (each by 2·off under valid).
  const std::int64_t mh = lines[0].dv == 2 ? oh : ih, mw = lines[0].dv == 3 ? ow : iw;
  const std::int64_t in_plane = ih * iw, mid_plane = mh * mw, out_plane = oh * ow;
  const double scale = st.w2 / static_cast<double>(st.q * st.q);
  const bool lift = in.from_images;
  const bool theta = !lift;  // a first layer has Θ = K: only K is summed
  const bool activate = !lift && in.activation != LayerKind::id;
  // After activation Σ̇⊙Θ lives in t_store (Θ may have been K itself before).
  const double* t_read = activate ? in.t_store : in.t;
  if (activate && circular) {  // slabs wrap around: activate everything first
    for (std::int64_t ii = 0; ii < ih; ++ii) activate_slab(in, ii, ih, iw);
  }
  std::int64_t activated = circular ? ih - 1 : -1;
  double* mid_k = ws.mid_k.data();
  double* mid_t = ws.mid_t.data();
  double* pk = ws.plane_k.data();
  double* pt = ws.plane_t.data();
  const double inv_c = lift ? 1.0 / static_cast<double>(in.x->channels) : 1.0;
  for (std::int64_t i = 0; i < oh; ++i) {
    if (activate) {
      const std::int64_t need = std::min(ih - 1, i + off + st.p);
      for (; activated < need; ++activated) activate_slab(in, activated + 1, ih, iw);
    }
    // Pass A: mid[jj] = Σ_a shift(in[i+off+a][jj]) for every input column jj.
    std::fill(mid_k, mid_k + iw * mid_plane, 0.0);
    if (theta) std::fill(mid_t, mid_t + iw * mid_plane, 0.0);
    for (int a = -st.p; a <= st.p; ++a) {
      const std::int64_t ii = source(i, off, a, ih, circular);
      if (ii < 0) continue;
      const std::int64_t move = lines[0].sign * a + off;
      const std::int64_t d2 = lines[0].dv == 2 ? move : 0, d3 = lines[0].dv == 3 ? move : 0;
      for (std::int64_t jj = 0; jj < iw; ++jj) {
        if (lift) {
          for (std::int64_t c = 0; c < in.x->channels; ++c) {
            const double wgt = in.x->data[(c * ih + ii) * iw + jj] * inv_c;
            if (wgt != 0.0)
              shift_axpy(mid_k + jj * mid_plane, mh, mw, in.x2->data + c * in_plane, ih, iw, d2, d3, circular, wgt);
          }
        } else {
          const std::int64_t p = (ii * iw + jj) * in_plane;
          shift_axpy(mid_k + jj * mid_plane, mh, mw, in.k + p, ih, iw, d2, d3, circular, 1.0);
          shift_axpy(mid_t + jj * mid_plane, mh, mw, t_read + p, ih, iw, d2, d3, circular, 1.0);
        }
      }
    }
    // Pass B: out[i][j] = scale · Σ_b shift(mid[j+off+b]) + bias, then store or pool.
    for (std::int64_t j = 0; j < ow; ++j) {
      std::fill(pk, pk + out_plane, 0.0);
      if (theta) std::fill(pt, pt + out_plane, 0.0);
      for (int b = -st.p; b <= st.p; ++b) {
        const std::int64_t jj = source(j, off, b, iw, circular);
        if (jj < 0) continue;
        const std::int64_t move = lines[1].sign * b + off;
        const std::int64_t d2 = lines[1].dv == 2 ? move : 0, d3 = lines[1].dv == 3 ? move : 0;
        shift_axpy(pk, oh, ow, mid_k + jj * mid_plane, mh, mw, d2, d3, circular, 1.0);
        if (theta) shift_axpy(pt, oh, ow, mid_t + jj * mid_plane, mh, mw, d2, d3, circular, 1.0);
      }
      double* ok = out.pool ? pk : out.k + (i * ow + j) * out_plane;
      double* ot = out.pool ? pt : out.t + (i * ow + j) * out_plane;
      for (std::int64_t e = 0; e < out_plane; ++e) ok[e] = scale * pk[e] + st.b2;
      if (theta) {
        for (std::int64_t e = 0; e < out_plane; ++e) ot[e] = scale * pt[e] + ok[e];
      } else if (out.pool) {
        std::copy(ok, ok + out_plane, ot);
      }
      if (out.pool) {
        if (out.activation != LayerKind::id) dual_run(out.activation, out.var1[i * ow + j], out.var2, ok, ot, ok, ot, out_plane);
        double sk = 0.0, stt = 0.0;
        for (std::int64_t e = 0; e < out_plane; ++e) {
          sk += ok[e];
          stt += ot[e];
        }
        out.sum_k += sk;
        out.sum_t += stt;
      }
    }
  }
}

// Sum of a stored block (readout without a fused layer: observer mode).
void sum_block(const double* k, const double* t, std::int64_t planes, std::int64_t plane, double& sk, double& st) {
  for (std::int64_t p = 0; p < planes; ++p) {
    double a = 0.0, b = 0.0;
    for (std::int64_t e = 0; e < plane; ++e) {
      a += k[p * plane + e];
      b += t[p * plane + e];
    }
    sk += a;
    st += b;
  }
}

}  // namespace

KernelValue spatial(const Network& net, const ImageView& x, const SelfChain& sx, const ImageView& x2,
                    const SelfChain& sx2, Workspace& ws, const BlockObserver* observer) {
  const auto& stages = net.stages();
  const std::size_t readout = net.readout_stage();
  std::size_t last_linear = 0;
  for (std::size_t s = 0; s < readout; ++s)
    if (is_spatial_linear(stages[s].spec.kind)) last_linear = s;
  double sum_k = 0.0, sum_t = 0.0;
  std::int64_t pooled_pixels = 0;
  for (int delta = 0; delta < net.rotations(); ++delta) {
    double* cur_k = ws.block[0].data();
    double* cur_t = ws.block[1].data();
    double* nxt_k = ws.block[2].data();
    double* nxt_t = ws.block[3].data();
    bool theta_is_k = false;
    LayerKind pending = LayerKind::id;
    const double *pv1 = nullptr, *pv2 = nullptr;
    std::int64_t h = x.height, w = x.width;
    bool pooled = false;
    for (std::size_t s = 0; s < readout; ++s) {
      const Stage& st = stages[s];
      if (is_spatial_linear(st.spec.kind)) {
        Input in;
        in.from_images = st.in_state == StateKind::input;
        in.x = &x;
        in.x2 = &x2;
        in.k = cur_k;
        in.t = theta_is_k ? cur_k : cur_t;
        in.t_store = cur_t;
        in.activation = pending;
        in.var1 = pv1;
        in.var2 = pv2;
        Output out;
        // Fuse the last layer with its nonlinearity and the pooling, unless every state must be seen.
        out.pool = s == last_linear && observer == nullptr;
        out.k = nxt_k;
        out.t = nxt_t;
        if (out.pool && s + 1 < readout && is_nonlinearity(stages[s + 1].spec.kind)) {
          out.activation = stages[s + 1].spec.kind;
          out.var1 = sx.var[s + 1].data();
          out.var2 = sx2.var[s + 1].data();
        }
        run_layer(st, delta, in, out, ws);
        h = st.h_out;
        w = st.w_out;
        if (out.pool) {
          sum_k += out.sum_k;
          sum_t += out.sum_t;
          pooled = true;
          break;
        }
        std::swap(cur_k, nxt_k);
        std::swap(cur_t, nxt_t);
        theta_is_k = in.from_images;
        pending = LayerKind::id;
        if (observer != nullptr) (*observer)(s, delta, BlockView{h, w, cur_k, theta_is_k ? cur_k : cur_t});
      } else if (is_nonlinearity(st.spec.kind)) {
        pending = st.spec.kind;
        pv1 = sx.var[s].data();
        pv2 = sx2.var[s].data();
        if (observer != nullptr) {
          // Materialise the post-activation state now.
          if (pending != LayerKind::id) {
            const std::int64_t plane = h * w;
            for (std::int64_t p = 0; p < h * w; ++p)
              dual_run(pending, pv1[p], pv2, cur_k + p * plane, (theta_is_k ? cur_k : cur_t) + p * plane, cur_k + p * plane,
                       cur_t + p * plane, plane);
            theta_is_k = false;
          }
          pending = LayerKind::id;
          (*observer)(s, delta, BlockView{h, w, cur_k, theta_is_k ? cur_k : cur_t});
        }
      }
    }
    if (!pooled) sum_block(cur_k, theta_is_k ? cur_k : cur_t, h * w, h * w, sum_k, sum_t);
    pooled_pixels = h * w;
  }
  // gpool/gap: mean over every (g, g') = (1/4) Σ_Δ mean_{t,t'} B_Δ (MATH.md §5.1).
  const double count = static_cast<double>(net.rotations()) * static_cast<double>(pooled_pixels) *
                       static_cast<double>(pooled_pixels);
  return {sum_k / count, sum_t / count};
}

}  // namespace eqntk::kernel::detail::EQNTK_ISA_NS
