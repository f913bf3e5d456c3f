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

// One term of a window sum: w · in(o2 + d2, o3 + d3) over an ih×iw input plane.
struct Term {
  const double* in;
  std::int64_t d2, d3;
  double w;
};
constexpr int kMaxTerms = 64;  // q·C terms for the lift (q ≤ 15 with C ≤ 4), q otherwise; more are chunked

// out[e] = Σ_t w_t·src_t[e] (or += with accumulate) for e in [0, n): every term in one pass, one store
// per entry.
inline void sum_run(double* __restrict out, std::int64_t n, const double* const* src, const double* w, int nt,
                    bool accumulate) {
  if (accumulate) {  // rare: lifts with more than kMaxTerms channel terms
    for (int t = 0; t < nt; ++t)
      for (std::int64_t e = 0; e < n; ++e) out[e] += w[t] * src[t][e];
    return;
  }
  switch (nt) {
    case 0:
      std::fill(out, out + n, 0.0);
      return;
    case 1: {
      const double* __restrict a = src[0];
      const double wa = w[0];
      for (std::int64_t e = 0; e < n; ++e) out[e] = wa * a[e];
      return;
    }
    case 2: {
      const double *__restrict a = src[0], *__restrict b = src[1];
      const double wa = w[0], wb = w[1];
      for (std::int64_t e = 0; e < n; ++e) out[e] = wa * a[e] + wb * b[e];
      return;
    }
    case 3: {
      const double *__restrict a = src[0], *__restrict b = src[1], *__restrict c = src[2];
      const double wa = w[0], wb = w[1], wc = w[2];
      for (std::int64_t e = 0; e < n; ++e) out[e] = wa * a[e] + wb * b[e] + wc * c[e];
      return;
    }
    default: {
      const double *__restrict a = src[0], *__restrict b = src[1], *__restrict c = src[2], *__restrict d = src[3];
      const double wa = w[0], wb = w[1], wc = w[2], wd = w[3];
      for (std::int64_t e = 0; e < n; ++e) out[e] = wa * a[e] + wb * b[e] + wc * c[e] + wd * d[e];
      for (int t = 4; t < nt; ++t) {
        const double* __restrict x = src[t];
        const double wx = w[t];
        for (std::int64_t e = 0; e < n; ++e) out[e] += wx * x[e];
      }
    }
  }
}

// out(o2, o3) = Σ_t w_t · in_t(o2 + d2_t, o3 + d3_t) over an oh×ow plane from ih×iw planes; out-of-range
// sources are zero (same/valid) or wrap (circular). Interior runs take every term in one pass.
void window_plane(double* out, std::int64_t oh, std::int64_t ow, const Term* terms, int nt, std::int64_t ih,
                  std::int64_t iw, bool circular, bool accumulate = false) {
  const double* src[kMaxTerms];
  double wgt[kMaxTerms];
  bool rows_only = ow == iw;
  for (int t = 0; t < nt; ++t) rows_only = rows_only && terms[t].d3 == 0;
  if (rows_only && !circular) {
    // Each term covers a contiguous band of output rows; between consecutive band edges the set of
    // terms is fixed, and rows are contiguous, so each stretch is one flat run.
    std::int64_t cuts[2 * kMaxTerms + 2];
    int ncut = 0;
    cuts[ncut++] = 0;
    cuts[ncut++] = oh;
    for (int t = 0; t < nt; ++t) {
      cuts[ncut++] = std::clamp<std::int64_t>(-terms[t].d2, 0, oh);
      cuts[ncut++] = std::clamp<std::int64_t>(ih - terms[t].d2, 0, oh);
    }
    std::sort(cuts, cuts + ncut);
    for (int c = 0; c + 1 < ncut; ++c) {
      const std::int64_t r0 = cuts[c], r1 = cuts[c + 1];
      if (r1 <= r0) continue;
      int k = 0;
      for (int t = 0; t < nt; ++t) {
        const std::int64_t s0 = r0 + terms[t].d2;
        if (s0 < 0 || s0 + (r1 - r0) > ih) continue;
        src[k] = terms[t].in + s0 * iw;
        wgt[k++] = terms[t].w;
      }
      sum_run(out + r0 * ow, (r1 - r0) * ow, src, wgt, k, accumulate);
    }
    return;
  }
  for (std::int64_t o2 = 0; o2 < oh; ++o2) {
    double* __restrict orow = out + o2 * ow;
    // Terms whose source row exists, and the columns where all of them are in range without wrapping.
    Term live[kMaxTerms];
    int k = 0;
    std::int64_t lo = 0, hi = ow;
    for (int t = 0; t < nt; ++t) {
      std::int64_t s2 = o2 + terms[t].d2;
      if (s2 < 0 || s2 >= ih) {
        if (!circular) continue;
        s2 = wrap(s2, ih);
      }
      live[k] = {terms[t].in + s2 * iw, 0, terms[t].d3, terms[t].w};
      lo = std::max(lo, -terms[t].d3);
      hi = std::min(hi, iw - terms[t].d3);
      ++k;
    }
    lo = std::min(lo, ow);
    hi = std::max(hi, lo);
    for (int t = 0; t < k; ++t) {
      src[t] = live[t].in + lo + live[t].d3;
      wgt[t] = live[t].w;
    }
    sum_run(orow + lo, hi - lo, src, wgt, k, accumulate);
    // Edge columns: per term, in range (or wrapped) or not.
    for (std::int64_t o3 = 0; o3 < ow; ++o3) {
      if (o3 == lo) o3 = hi;
      if (o3 >= ow) break;
      double acc = 0.0;
      for (int t = 0; t < k; ++t) {
        std::int64_t s3 = o3 + live[t].d3;
        if (s3 < 0 || s3 >= iw) {
          if (!circular) continue;
          s3 = wrap(s3, iw);
        }
        acc += live[t].w * live[t].in[s3];
      }
      orow[o3] = accumulate ? orow[o3] + acc : acc;
    }
  }
}

// Sum of n values with 8 independent partial sums (vectorisable, fixed order: deterministic).
inline double sum_vec(const double* __restrict a, std::int64_t n) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t e = 0;
  for (; e + 8 <= n; e += 8)
    for (int l = 0; l < 8; ++l) part[l] += a[e + l];
  double total = 0.0;
  for (; e < n; ++e) total += a[e];
  return total + ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
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
  DualSide side{nullptr, nullptr};  // roots of the x' variance map (prepare_side)
};

// Where a linear layer's output goes: stored, or straight into the pooled sums (after `activation`).
struct Output {
  bool pool = false;
  double* k = nullptr;
  double* t = nullptr;
  LayerKind activation = LayerKind::id;
  const double* var1 = nullptr;
  DualSide side{nullptr, nullptr};
  double sum_k = 0.0, sum_t = 0.0;
};

// Applies the pending nonlinearity to input slab ii (all jj planes), in place.
void activate_slab(Input& in, std::int64_t ii, std::int64_t ih, std::int64_t iw) {
  const std::int64_t plane = ih * iw;
  for (std::int64_t jj = 0; jj < iw; ++jj) {
    const std::int64_t p = ii * iw + jj;
    double* k = in.k + p * plane;
    const double* t = in.t + p * plane;
    double a1 = 0, b1 = 0;
    side_scalars(in.activation, in.var1[p], a1, b1);
    dual_run(in.activation, a1, b1, in.side, k, t, k, in.t_store + p * plane, plane);
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
    Term tk[kMaxTerms], tt[kMaxTerms];
    for (std::int64_t jj = 0; jj < iw; ++jj) {
      int nk = 0, ntt = 0;
      bool accumulate = false;
      for (int a = -st.p; a <= st.p; ++a) {
        const std::int64_t ii = source(i, off, a, ih, circular);
        if (ii < 0) continue;
        const std::int64_t move = lines[0].sign * a + off;
        const std::int64_t d2 = lines[0].dv == 2 ? move : 0, d3 = lines[0].dv == 3 ? move : 0;
        if (lift) {
          for (std::int64_t c = 0; c < in.x->channels; ++c) {
            if (nk == kMaxTerms) {  // very many channels: sum them in chunks
              window_plane(mid_k + jj * mid_plane, mh, mw, tk, nk, ih, iw, circular, accumulate);
              accumulate = true;
              nk = 0;
            }
            tk[nk++] = {in.x2->data + c * in_plane, d2, d3, in.x->data[(c * ih + ii) * iw + jj] * inv_c};
          }
        } else {
          const std::int64_t p = (ii * iw + jj) * in_plane;
          tk[nk++] = {in.k + p, d2, d3, 1.0};
          tt[ntt++] = {t_read + p, d2, d3, 1.0};
        }
      }
      if (nk > 0 || !accumulate) window_plane(mid_k + jj * mid_plane, mh, mw, tk, nk, ih, iw, circular, accumulate);
      if (theta) window_plane(mid_t + jj * mid_plane, mh, mw, tt, ntt, ih, iw, circular);
    }
    // Pass B: out[i][j] = scale · Σ_b shift(mid[j+off+b]) + bias, then store or pool.
    for (std::int64_t j = 0; j < ow; ++j) {
      int nk = 0;
      for (int b = -st.p; b <= st.p; ++b) {
        const std::int64_t jj = source(j, off, b, iw, circular);
        if (jj < 0) continue;
        const std::int64_t move = lines[1].sign * b + off;
        const std::int64_t d2 = lines[1].dv == 2 ? move : 0, d3 = lines[1].dv == 3 ? move : 0;
        tk[nk] = {mid_k + jj * mid_plane, d2, d3, 1.0};
        tt[nk++] = {mid_t + jj * mid_plane, d2, d3, 1.0};
      }
      window_plane(pk, oh, ow, tk, nk, mh, mw, circular);
      if (theta) window_plane(pt, oh, ow, tt, nk, mh, mw, circular);
      double* ok = out.pool ? pk : out.k + (i * ow + j) * out_plane;
      double* ot = out.pool ? pt : out.t + (i * ow + j) * out_plane;
      for (std::int64_t e = 0; e < out_plane; ++e) ok[e] = scale * pk[e] + st.b2;
      if (theta) {
        for (std::int64_t e = 0; e < out_plane; ++e) ot[e] = scale * pt[e] + ok[e];
      } else if (out.pool) {
        std::copy(ok, ok + out_plane, ot);
      }
      if (out.pool) {
        if (out.activation != LayerKind::id) {
          double a1 = 0, b1 = 0;
          side_scalars(out.activation, out.var1[i * ow + j], a1, b1);
          dual_run(out.activation, a1, b1, out.side, ok, ot, ok, ot, out_plane);
        }
        out.sum_k += sum_vec(ok, out_plane);
        out.sum_t += sum_vec(ot, out_plane);
      }
    }
  }
}

// Sum of a stored block (readout without a fused layer: observer mode).
void sum_block(const double* k, const double* t, std::int64_t planes, std::int64_t plane, double& sk, double& st) {
  for (std::int64_t p = 0; p < planes; ++p) {
    sk += sum_vec(k + p * plane, plane);
    st += sum_vec(t + p * plane, plane);
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
        if (pending != LayerKind::id) {
          prepare_side(pending, pv2, st.h_in * st.w_in, ws.in_a.data(), ws.in_b.data());
          in.side = {ws.in_a.data(), ws.in_b.data()};
        }
        Output out;
        // Fuse the last layer with its nonlinearity and the pooling, unless every state must be seen.
        out.pool = s == last_linear && observer == nullptr;
        out.k = nxt_k;
        out.t = nxt_t;
        if (out.pool && s + 1 < readout && is_nonlinearity(stages[s + 1].spec.kind)) {
          out.activation = stages[s + 1].spec.kind;
          out.var1 = sx.var[s + 1].data();
          prepare_side(out.activation, sx2.var[s + 1].data(), st.h_out * st.w_out, ws.out_a.data(), ws.out_b.data());
          out.side = {ws.out_a.data(), ws.out_b.data()};
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
            prepare_side(pending, pv2, plane, ws.in_a.data(), ws.in_b.data());
            for (std::int64_t p = 0; p < h * w; ++p) {
              double a1 = 0, b1 = 0;
              side_scalars(pending, pv1[p], a1, b1);
              dual_run(pending, a1, b1, {ws.in_a.data(), ws.in_b.data()}, cur_k + p * plane,
                       (theta_is_k ? cur_k : cur_t) + p * plane, cur_k + p * plane, cur_t + p * plane, plane);
            }
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
