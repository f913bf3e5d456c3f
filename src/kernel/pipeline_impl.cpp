// The plane pipeline of pipeline.hpp. This file is compiled once per instruction-set level with
// EQNTK_ISA_NS naming the namespace (isa_baseline, isa_avx2, isa_avx512) and the matching -march flags.
#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>

#include "eqntk/group/point_group.hpp"
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

// Planes are stored with padded rows: an h×w plane occupies h rows of stride s = w + 2P, element
// (o2, o3) at [o2·s + P + o3], and its pad columns hold zeros (zero padding) or wrapped copies of the row
// (circular), whatever the layer that reads it needs. Every buffer has kGuard spare doubles on both
// sides. A window term shifted by |d3| ≤ P columns then reads valid memory over whole rows, so a window
// sum over a stretch of rows is one flat run; the pad columns of its output receive junk that
// fill_pads() replaces.
struct Geom {
  std::int64_t h = 0, w = 0, s = 0;  // rows, columns, row stride
  [[nodiscard]] std::int64_t size() const { return h * s; }
};

// One term of a window sum: w · in(o2 + d2, o3 + d3) over a plane of geometry gi. I is the stored type
// of the input planes (double, or float with --precision mixed); arithmetic is always double.
template <class I>
struct Term {
  const I* in;  // plane base (row 0, first pad column)
  std::int64_t d2, d3;
  double w;
};
constexpr int kMaxTerms = 64;  // q·C terms for the lift, q otherwise; more are chunked

// out[e] = Σ_t w_t·src_t[e] + bias (+ add[e]) for e in [0, n) — or out[e] += Σ_t w_t·src_t[e] with
// accumulate — every term in one pass, one store per entry, the sum always formed in double.
template <class O, class I>
inline void sum_run(O* __restrict out, std::int64_t n, const I* const* src, const double* w, int nt, bool accumulate,
                    double bias = 0.0, const O* __restrict add = nullptr) {
  if (accumulate) {  // rare: lifts with more than kMaxTerms channel terms
    for (std::int64_t e = 0; e < n; ++e) {
      double v = out[e];
      for (int t = 0; t < nt; ++t) v += w[t] * src[t][e];
      out[e] = static_cast<O>(v);
    }
    return;
  }
  switch (nt) {
    case 0:
      for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(bias + (add != nullptr ? double(add[e]) : 0.0));
      return;
    case 1: {
      const I* __restrict a = src[0];
      const double wa = w[0];
      if (add != nullptr)
        for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(wa * a[e] + bias + add[e]);
      else
        for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(wa * a[e] + bias);
      return;
    }
    case 2: {
      const I *__restrict a = src[0], *__restrict b = src[1];
      const double wa = w[0], wb = w[1];
      if (add != nullptr)
        for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(wa * a[e] + wb * b[e] + bias + add[e]);
      else
        for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(wa * a[e] + wb * b[e] + bias);
      return;
    }
    case 3: {
      const I *__restrict a = src[0], *__restrict b = src[1], *__restrict c = src[2];
      const double wa = w[0], wb = w[1], wc = w[2];
      if (add != nullptr)
        for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(wa * a[e] + wb * b[e] + wc * c[e] + bias + add[e]);
      else
        for (std::int64_t e = 0; e < n; ++e) out[e] = static_cast<O>(wa * a[e] + wb * b[e] + wc * c[e] + bias);
      return;
    }
    default: {
      // Larger windows: accumulate chunks in a local double array, then store once.
      constexpr std::int64_t kChunk = 256;
      alignas(64) double acc[kChunk];
      for (std::int64_t e0 = 0; e0 < n; e0 += kChunk) {
        const std::int64_t m = std::min(kChunk, n - e0);
        const I *__restrict a = src[0] + e0, *__restrict b = src[1] + e0, *__restrict c = src[2] + e0,
                            *__restrict d = src[3] + e0;
        const double wa = w[0], wb = w[1], wc = w[2], wd = w[3];
        for (std::int64_t e = 0; e < m; ++e) acc[e] = wa * a[e] + wb * b[e] + wc * c[e] + wd * d[e] + bias;
        for (int t = 4; t < nt; ++t) {
          const I* __restrict x = src[t] + e0;
          const double wx = w[t];
          for (std::int64_t e = 0; e < m; ++e) acc[e] += wx * x[e];
        }
        if (add != nullptr)
          for (std::int64_t e = 0; e < m; ++e) out[e0 + e] = static_cast<O>(acc[e] + add[e0 + e]);
        else
          for (std::int64_t e = 0; e < m; ++e) out[e0 + e] = static_cast<O>(acc[e]);
      }
    }
  }
}

// Pad columns of rows [r0, r1): zeros, or the row's values wrapped around (circular).
template <class S>
inline void fill_pads(S* plane, const Geom& g, std::int64_t pad, bool wrap_values, std::int64_t r0, std::int64_t r1) {
  if (pad == 0) return;
  for (std::int64_t r = r0; r < r1; ++r) {
    S* row = plane + r * g.s + pad;  // interior starts here
    for (std::int64_t k = 1; k <= pad; ++k) {
      row[-k] = wrap_values ? row[wrap(-k, g.w)] : S(0);
      row[g.w - 1 + k] = wrap_values ? row[wrap(g.w - 1 + k, g.w)] : S(0);
    }
  }
}

// out(o2, o3) = Σ_t w_t · in_t(o2 + d2_t, o3 + d3_t) over plane geometry go from planes of geometry gi;
// out-of-range rows are zero (same/valid) or wrap (circular); columns come from the pads. Leaves the
// pad columns of `out` as zeros or wrapped values (wrap_out).
// With bias/add: out = Σ + bias + add, add being a plane of geometry go (unshifted).
template <class O, class I>
void window_plane(O* out, const Geom& go, const Term<I>* terms, int nt, const Geom& gi, std::int64_t pad, bool circular,
                  bool wrap_out, bool accumulate = false, double bias = 0.0, const O* add = nullptr) {
  const I* src[kMaxTerms];
  double wgt[kMaxTerms];
  if (go.s == gi.s) {
    // Between consecutive cut rows the set of terms and their source rows are fixed: one flat run.
    std::int64_t cuts[2 * kMaxTerms + 2];
    int ncut = 0;
    cuts[ncut++] = 0;
    cuts[ncut++] = go.h;
    for (int t = 0; t < nt; ++t) {
      // Zero padding: the rows with a source; circular: the row where the source wraps (oh ≤ ih, so once).
      cuts[ncut++] = circular ? std::min(wrap(-terms[t].d2, gi.h), go.h) : std::clamp<std::int64_t>(-terms[t].d2, 0, go.h);
      cuts[ncut++] = std::clamp<std::int64_t>(gi.h - terms[t].d2, 0, go.h);
    }
    std::sort(cuts, cuts + ncut);
    for (int c = 0; c + 1 < ncut; ++c) {
      const std::int64_t r0 = cuts[c], r1 = cuts[c + 1];
      if (r1 <= r0) continue;
      int k = 0;
      for (int t = 0; t < nt; ++t) {
        std::int64_t s0 = r0 + terms[t].d2;
        if (s0 < 0 || s0 >= gi.h) {
          if (!circular) continue;
          s0 = wrap(s0, gi.h);  // the cuts keep the whole stretch on one side of the wrap
        }
        src[k] = terms[t].in + s0 * gi.s + terms[t].d3;
        wgt[k++] = terms[t].w;
      }
      sum_run(out + r0 * go.s, (r1 - r0) * go.s, src, wgt, k, accumulate, bias,
              add != nullptr ? add + r0 * go.s : nullptr);
    }
  } else {
    // Valid padding shrinking the columns: rows of different strides, one run per row, never out of range.
    for (std::int64_t o2 = 0; o2 < go.h; ++o2) {
      int k = 0;
      for (int t = 0; t < nt; ++t) {
        const std::int64_t s2 = o2 + terms[t].d2;
        if (s2 < 0 || s2 >= gi.h) continue;
        src[k] = terms[t].in + s2 * gi.s + pad + terms[t].d3;
        wgt[k++] = terms[t].w;
      }
      sum_run(out + o2 * go.s + pad, go.w, src, wgt, k, accumulate, bias,
              add != nullptr ? add + o2 * go.s + pad : nullptr);
    }
  }
  fill_pads(out, go, pad, wrap_out, 0, go.h);
}

// Sum of n values with 8 independent partial sums (vectorisable, fixed order: deterministic).
template <class S>
inline double sum_vec(const S* __restrict a, std::int64_t n) {
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
template <class S>
struct Input {
  bool from_images = false;  // lift / first conv: K⁰ planes built from the two images on the fly
  const data::ImageView* x = nullptr;
  const double* x2_padded = nullptr;  // the x' channels as padded planes (lift)
  S* k = nullptr;        // stored block (pre-activation until activated)
  S* t = nullptr;        // Θ block; equal to k while Θ = K (after a first layer, no nonlinearity yet)
  S* t_store = nullptr;  // where the activation writes Σ̇⊙Θ (may equal t, never k)
  LayerKind activation = LayerKind::id;  // nonlinearity to apply lazily, slab by slab
  const double* var1 = nullptr;
  DualSide side{nullptr, nullptr};  // padded roots of the x' variance map (prepare_side)
};

// Where a linear layer's output goes: stored (pads prepared for the next layer), or straight into the
// pooled sums after `activation`.
template <class S>
struct Output {
  bool pool = false;
  bool wrap_pads = false;  // the next layer is circular
  S* k = nullptr;
  S* t = nullptr;
  LayerKind activation = LayerKind::id;
  const double* var1 = nullptr;
  DualSide side{nullptr, nullptr};
  double sum_k = 0.0, sum_t = 0.0;
};

// Padded roots of a variance map (pads zero: a zero variance gives Σ = Σ̇⊙Θ = 0 on zero pads).
void prepare_side_padded(LayerKind kind, const double* q, const Geom& g, std::int64_t pad, double* a, double* b) {
  std::fill(a, a + g.size(), 0.0);
  std::fill(b, b + g.size(), 0.0);
  for (std::int64_t r = 0; r < g.h; ++r) prepare_side(kind, q + r * g.w, g.w, a + r * g.s + pad, b + r * g.s + pad);
}

// Applies the pending nonlinearity to input slab ii (all jj planes), in place, over whole padded planes;
// zero pads stay zero, wrapped pads are refreshed.
template <class S>
void activate_slab(Input<S>& in, std::int64_t ii, const Geom& g, std::int64_t pad, bool wrap_pads) {
  const std::int64_t plane = g.size();
  for (std::int64_t jj = 0; jj < g.w; ++jj) {
    const std::int64_t p = ii * g.w + jj;
    S* k = in.k + p * plane;
    S* t = in.t_store + p * plane;
    double a1 = 0, b1 = 0;
    side_scalars(in.activation, in.var1[p], a1, b1);
    dual_run(in.activation, a1, b1, in.side, k, in.t + p * plane, k, t, plane);
    if (wrap_pads) {
      fill_pads(k, g, pad, true, 0, g.h);
      fill_pads(t, g, pad, true, 0, g.h);
    }
  }
}

template <class S>
void run_layer(const Stage& st, group::Element block, Input<S>& in, Output<S>& out, Workspace& ws) {
  const auto lines = box_lines(block);
  const std::int64_t pad = ws.pad;
  const bool circular = st.spec.pad == Padding::circular;
  const std::int64_t off = st.spec.pad == Padding::valid ? st.p : 0;
  const std::int64_t ih = st.h_in, iw = st.w_in, oh = st.h_out, ow = st.w_out;
  // Pass A reduces dim 0 and lines[0].dv; pass B dim 1 and lines[1].dv (each by 2·off under valid).
  const std::int64_t mh = lines[0].dv == 2 ? oh : ih, mw = lines[0].dv == 3 ? ow : iw;
  const Geom gi{ih, iw, iw + 2 * pad}, gm{mh, mw, mw + 2 * pad}, go{oh, ow, ow + 2 * pad};
  const double scale = st.w2 / static_cast<double>(st.q * st.q);
  const bool lift = in.from_images;
  const bool theta = !lift;  // a first layer has Θ = K: only K is summed
  const bool activate = !lift && in.activation != LayerKind::id;
  // After activation Σ̇⊙Θ lives in t_store (Θ may have been K itself before).
  const S* t_read = activate ? in.t_store : in.t;
  if (activate && circular) {  // slabs wrap around: activate everything first
    for (std::int64_t ii = 0; ii < ih; ++ii) activate_slab(in, ii, gi, pad, true);
  }
  std::int64_t activated = circular ? ih - 1 : -1;
  S* mid_k = ws.at<S>(ws.mid_k);
  S* mid_t = ws.at<S>(ws.mid_t);
  S* pk = ws.at<S>(ws.plane_k);
  S* pt = ws.at<S>(ws.plane_t);
  const double inv_c = lift ? 1.0 / static_cast<double>(in.x->channels) : 1.0;
  Term<S> tk[kMaxTerms], tt[kMaxTerms];
  Term<double> tl[kMaxTerms];  // lift terms: the x' channels are kept in double
  // Non-circular layers walk the output in column strips so that the q input slabs a strip touches
  // stay in L2 between the q output rows that reuse them (mid planes at strip edges are made twice).
  const std::int64_t col_bytes = static_cast<std::int64_t>(st.q) * 2 * 8 * gi.size();
  const std::int64_t strip = circular ? ow : std::clamp<std::int64_t>((1 << 20) / std::max<std::int64_t>(col_bytes, 1) - 2 * st.p, 4, ow);
  for (std::int64_t j0 = 0; j0 < ow; j0 += strip) {
  const std::int64_t j1 = std::min(ow, j0 + strip);
  for (std::int64_t i = 0; i < oh; ++i) {
    if (activate) {
      const std::int64_t need = std::min(ih - 1, i + off + st.p);
      for (; activated < need; ++activated) activate_slab(in, activated + 1, gi, pad, false);
    }
    // Pass A: mid plane jj = Σ_a shift(in[i+off+a][jj]).
    const auto make_mid = [&](std::int64_t jj, S* mk, S* mt) {
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
              window_plane(mk, gm, tl, nk, gi, pad, circular, circular, accumulate);
              accumulate = true;
              nk = 0;
            }
            tl[nk++] = {in.x2_padded + c * gi.size(), d2, d3, in.x->data[(c * ih + ii) * iw + jj] * inv_c};
          }
        } else {
          const std::int64_t p = (ii * iw + jj) * gi.size();
          tk[nk++] = {in.k + p, d2, d3, 1.0};
          tt[ntt++] = {t_read + p, d2, d3, 1.0};
        }
      }
      if (lift) {
        if (nk > 0 || !accumulate) window_plane(mk, gm, tl, nk, gi, pad, circular, circular, accumulate);
      } else {
        window_plane(mk, gm, tk, nk, gi, pad, circular, circular);
        if (theta) window_plane(mt, gm, tt, ntt, gi, pad, circular, circular);
      }
    };
    // Pass B: out[i][j] = scale · Σ_b shift(mid plane j+off+b) + bias, then store or pool.
    const auto emit = [&](std::int64_t j, const std::function<std::int64_t(std::int64_t)>& slot) {
      int nk = 0;
      for (int b = -st.p; b <= st.p; ++b) {
        const std::int64_t jj = source(j, off, b, iw, circular);
        if (jj < 0) continue;
        const std::int64_t move = lines[1].sign * b + off;
        const std::int64_t d2 = lines[1].dv == 2 ? move : 0, d3 = lines[1].dv == 3 ? move : 0;
        const std::int64_t m = slot(jj) * gm.size();
        tk[nk] = {mid_k + m, d2, d3, scale};
        tt[nk++] = {mid_t + m, d2, d3, scale};
      }
      // K' = σ_w²/q² S(Σ) + σ_b² and Θ' = σ_w²/q² S(Σ̇⊙Θ) + K', straight into their destination.
      const std::int64_t n = go.size();
      S* ok = out.pool ? pk : out.k + (i * ow + j) * n;
      S* ot = out.pool ? pt : out.t + (i * ow + j) * n;
      window_plane(ok, go, tk, nk, gm, pad, circular, out.wrap_pads, false, st.b2);
      if (theta) {
        window_plane(ot, go, tt, nk, gm, pad, circular, out.wrap_pads, false, 0.0, ok);
      } else if (out.pool) {
        std::copy(ok, ok + n, ot);
      }
      if (out.pool) {
        if (out.activation != LayerKind::id) {
          double a1 = 0, b1 = 0;
          side_scalars(out.activation, out.var1[i * ow + j], a1, b1);
          dual_run(out.activation, a1, b1, out.side, ok, ot, ok, ot, n);
        }
        out.sum_k += sum_vec(ok, n);
        out.sum_t += sum_vec(ot, n);
      }
    };
    if (circular) {
      // Output planes near one edge need mid planes from the other: keep the whole slab.
      for (std::int64_t jj = 0; jj < iw; ++jj) make_mid(jj, mid_k + jj * gm.size(), mid_t + jj * gm.size());
      for (std::int64_t j = 0; j < ow; ++j) emit(j, [](std::int64_t jj) { return jj; });
    } else {
      // A ring of q mid planes (L1-resident): output j needs mid planes j+off−p .. j+off+p, the last q made.
      const auto ring = [q = st.q](std::int64_t jj) { return jj % q; };
      std::int64_t next = j0;
      const std::int64_t jj_end = std::min(iw, j1 + off + st.p);
      for (std::int64_t jj = std::max<std::int64_t>(0, j0 + off - st.p); jj < jj_end; ++jj) {
        make_mid(jj, mid_k + ring(jj) * gm.size(), mid_t + ring(jj) * gm.size());
        for (; next < j1 && next + off + st.p <= jj; ++next) emit(next, ring);
      }
      for (; next < j1; ++next) emit(next, ring);
    }
  }
  }
}

// The index of the next spatial linear stage after s (or the readout when there is none).
std::size_t next_linear(const Network& net, std::size_t s) {
  for (std::size_t n = s + 1; n < net.readout_stage(); ++n)
    if (is_spatial_linear(net.stages()[n].spec.kind)) return n;
  return net.readout_stage();
}

// Copies a padded block into the unpadded [i][j][i'][j'] layout of BlockView (observer mode).
template <class S>
void unpad_block(const S* block, const Geom& g, std::int64_t pad, std::vector<double>& out) {
  out.resize(static_cast<std::size_t>(g.h * g.w * g.h * g.w));
  for (std::int64_t p = 0; p < g.h * g.w; ++p)
    for (std::int64_t r = 0; r < g.h; ++r)
      std::copy_n(block + p * g.size() + r * g.s + pad, g.w, out.begin() + (p * g.h + r) * g.w);
}

// avgpool of one stored block (MATH.md §10): out(T, T') = (1/s⁴) Σ_{t∈cell T} Σ_{t'∈cell T'} in(t, t').
// The s² input planes of cell T are summed into one unpadded plane first, then its cells are summed.
template <class S>
void avgpool_block(const S* in, const Geom& gi, S* out, const Geom& go, int cell, std::int64_t pad, bool wrap_out,
                   std::vector<double>& plane_sum) {
  const double inv = 1.0 / (static_cast<double>(cell) * cell * cell * cell);
  double* acc = plane_sum.data();
  for (std::int64_t ci = 0; ci < go.h; ++ci)
    for (std::int64_t cj = 0; cj < go.w; ++cj) {
      std::fill(acc, acc + gi.h * gi.w, 0.0);
      for (int di = 0; di < cell; ++di)
        for (int dj = 0; dj < cell; ++dj) {
          const S* plane = in + ((ci * cell + di) * gi.w + cj * cell + dj) * gi.size();
          for (std::int64_t r = 0; r < gi.h; ++r)
            for (std::int64_t c = 0; c < gi.w; ++c) acc[r * gi.w + c] += plane[r * gi.s + pad + c];
        }
      S* o = out + (ci * go.w + cj) * go.size();
      for (std::int64_t r = 0; r < go.h; ++r)
        for (std::int64_t c = 0; c < go.w; ++c) {
          double v = 0.0;
          for (int di = 0; di < cell; ++di)
            for (int dj = 0; dj < cell; ++dj) v += acc[(r * cell + di) * gi.w + c * cell + dj];
          o[r * go.s + pad + c] = static_cast<S>(inv * v);
        }
      fill_pads(o, go, pad, wrap_out, 0, go.h);
    }
}

// Whether the state after stage s is read by a circular layer next (its pads then hold wrapped values).
bool next_wraps(const Network& net, std::size_t s) {
  const std::size_t next = next_linear(net, s);
  return next < net.readout_stage() && net.stages()[next].spec.pad == Padding::circular;
}

template <class S>
KernelValue spatial_impl(const Network& net, const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                         const SelfChain& sx2, Workspace& ws, const BlockObserver* observer, SelfChain* record) {
  const auto& stages = net.stages();
  const std::size_t readout = net.readout_stage();
  const std::int64_t pad = ws.pad;
  const bool flatten = stages[readout].spec.kind == LayerKind::flatten;
  std::size_t last_linear = 0;
  for (std::size_t s = 0; s < readout; ++s)
    if (is_spatial_linear(stages[s].spec.kind)) last_linear = s;
  // The last linear layer hands its planes straight to its nonlinearity and the pooled sums when nothing
  // but that nonlinearity stands before a gpool/gap readout and no state has to be seen or recorded.
  bool fuse = observer == nullptr && record == nullptr && !flatten;
  for (std::size_t s = last_linear + 1; s < readout; ++s)
    if (!is_nonlinearity(stages[s].spec.kind)) fuse = false;
  // The x' channels as padded planes for the first layer (zero or wrapped pads per its padding).
  {
    const Stage& first = stages[next_linear(net, static_cast<std::size_t>(-1))];
    const Geom g{x2.height, x2.width, x2.width + 2 * pad};
    double* dst = ws.x2_padded.data() + ws.guard;
    for (std::int64_t c = 0; c < x2.channels; ++c) {
      for (std::int64_t r = 0; r < g.h; ++r)
        std::copy_n(x2.data + (c * g.h + r) * g.w, g.w, dst + c * g.size() + r * g.s + pad);
      fill_pads(dst + c * g.size(), g, pad, first.spec.pad == Padding::circular, 0, g.h);
    }
  }
  const auto elements = group::elements(net.group());
  // flatten needs only same-position entries of the e-block (right invariance, MATH.md §10).
  const int blocks = flatten ? 1 : net.rotations();
  double sum_k = 0.0, sum_t = 0.0;
  std::int64_t pooled_pixels = 0;
  for (int block = 0; block < blocks; ++block) {
    const group::Element element = elements[static_cast<std::size_t>(block)];
    S* cur_k = ws.at<S>(ws.block[0]);
    S* cur_t = ws.at<S>(ws.block[1]);
    S* nxt_k = ws.at<S>(ws.block[2]);
    S* nxt_t = ws.at<S>(ws.block[3]);
    bool theta_is_k = false;
    LayerKind pending = LayerKind::id;
    const double *pv1 = nullptr, *pv2 = nullptr;
    std::int64_t h = x.height, w = x.width;
    bool pooled = false;
    std::size_t next_saved = 0;
    std::vector<std::size_t> open_res;  // slots in ws.saved of the enclosing res blocks
    // Applies a pending nonlinearity to the whole stored state (pads as the layer after stage s needs).
    const auto materialize = [&](std::size_t s) {
      if (pending == LayerKind::id) return;
      const Geom g{h, w, w + 2 * pad};
      prepare_side_padded(pending, pv2, g, pad, ws.in_a.data(), ws.in_b.data());
      Input<S> in;
      in.k = cur_k;
      in.t = theta_is_k ? cur_k : cur_t;
      in.t_store = cur_t;
      in.activation = pending;
      in.var1 = pv1;
      in.side = {ws.in_a.data(), ws.in_b.data()};
      const bool wrap_pads = next_wraps(net, s);
      for (std::int64_t ii = 0; ii < h; ++ii) activate_slab(in, ii, g, pad, wrap_pads);
      theta_is_k = false;
      pending = LayerKind::id;
    };
    const auto observe = [&](std::size_t s) {
      if (observer == nullptr) return;
      const Geom g{h, w, w + 2 * pad};
      unpad_block(cur_k, g, pad, ws.obs_k);
      unpad_block(theta_is_k ? cur_k : cur_t, g, pad, ws.obs_t);
      (*observer)(s, block, BlockView{h, w, ws.obs_k.data(), ws.obs_t.data()});
    };
    for (std::size_t s = 0; s < readout; ++s) {
      const Stage& st = stages[s];
      const Geom g{h, w, w + 2 * pad};
      if (is_spatial_linear(st.spec.kind)) {
        Input<S> in;
        in.from_images = st.in_state == StateKind::input;
        in.x = &x;
        in.x2_padded = ws.x2_padded.data() + ws.guard;
        in.k = cur_k;
        in.t = theta_is_k ? cur_k : cur_t;
        in.t_store = cur_t;
        in.activation = pending;
        in.var1 = pv1;
        if (pending != LayerKind::id) {
          prepare_side_padded(pending, pv2, g, pad, ws.in_a.data(), ws.in_b.data());
          in.side = {ws.in_a.data(), ws.in_b.data()};
        }
        Output<S> out;
        // Fuse the last layer with its nonlinearity and the pooling, unless every state must be seen.
        out.pool = fuse && s == last_linear;
        out.wrap_pads = !out.pool && next_wraps(net, s);
        out.k = nxt_k;
        out.t = nxt_t;
        if (out.pool && s + 1 < readout && is_nonlinearity(stages[s + 1].spec.kind)) {
          out.activation = stages[s + 1].spec.kind;
          out.var1 = sx.var[s + 1].data();
          prepare_side_padded(out.activation, sx2.var[s + 1].data(), Geom{st.h_out, st.w_out, st.w_out + 2 * pad}, pad,
                              ws.out_a.data(), ws.out_b.data());
          out.side = {ws.out_a.data(), ws.out_b.data()};
        }
        run_layer(st, element, in, out, ws);
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
        observe(s);
      } else if (is_nonlinearity(st.spec.kind)) {
        if (record != nullptr && block == 0) {
          // The self pair's e-block diagonal K_{(t,e),(t,e)}(x, x): this stage's variance map.
          std::vector<double>& var = record->var[s];
          var.resize(static_cast<std::size_t>(h * w));
          for (std::int64_t p = 0; p < h * w; ++p)
            var[static_cast<std::size_t>(p)] = static_cast<double>(cur_k[p * g.size() + (p / w) * g.s + pad + p % w]);
        }
        pending = st.spec.kind;
        pv1 = sx.var[s].data();
        pv2 = sx2.var[s].data();
        if (observer != nullptr) {
          materialize(s);  // the post-activation state, now
          observe(s);
        }
      } else if (st.spec.kind == LayerKind::avgpool) {
        materialize(s);
        const Geom go{st.h_out, st.w_out, st.w_out + 2 * pad};
        const bool wrap_pads = next_wraps(net, s);
        avgpool_block(cur_k, g, nxt_k, go, st.spec.s, pad, wrap_pads, ws.pool_sum);
        if (!theta_is_k) avgpool_block(cur_t, g, nxt_t, go, st.spec.s, pad, wrap_pads, ws.pool_sum);
        std::swap(cur_k, nxt_k);
        std::swap(cur_t, nxt_t);
        h = st.h_out;
        w = st.w_out;
        observe(s);
      } else if (st.spec.kind == LayerKind::res) {
        // Save the block's input h (post-activation: Σ and Σ̇⊙Θ) for the sum at res_end.
        materialize(s);
        const std::size_t slot = next_saved;
        next_saved += 2;
        open_res.push_back(slot);
        const std::int64_t n = h * w * g.size();
        std::copy_n(cur_k, n, ws.at<S>(ws.saved[slot]));
        std::copy_n(theta_is_k ? cur_k : cur_t, n, ws.at<S>(ws.saved[slot + 1]));
        observe(s);
      } else if (st.spec.kind == LayerKind::res_end) {
        // h + F(h): K' = K + K_F, Θ' = Θ + Θ_F (MATH.md §10); then pads for the layer that reads it next.
        materialize(s);
        const std::size_t slot = open_res.back();
        open_res.pop_back();
        const S* sk = ws.at<S>(ws.saved[slot]);
        const S* stt = ws.at<S>(ws.saved[slot + 1]);
        if (theta_is_k) {  // cannot happen (the body starts with a layer on feature maps), kept exact anyway
          std::copy_n(cur_k, h * w * g.size(), cur_t);
          theta_is_k = false;
        }
        const std::int64_t n = h * w * g.size();
        for (std::int64_t e = 0; e < n; ++e) {
          cur_k[e] = static_cast<S>(double(cur_k[e]) + double(sk[e]));
          cur_t[e] = static_cast<S>(double(cur_t[e]) + double(stt[e]));
        }
        const bool wrap_pads = next_wraps(net, s);
        for (std::int64_t p = 0; p < h * w; ++p) {
          fill_pads(cur_k + p * g.size(), g, pad, wrap_pads, 0, g.h);
          fill_pads(cur_t + p * g.size(), g, pad, wrap_pads, 0, g.h);
        }
        observe(s);
      }
    }
    if (!pooled) {
      // Pool the stored block. Its pads are zero (no layer reads it) and count as nothing.
      materialize(readout);
      const Geom g{h, w, w + 2 * pad};
      const S* tk = theta_is_k ? cur_k : cur_t;
      if (flatten) {
        for (std::int64_t p = 0; p < h * w; ++p) {
          const std::int64_t e = p * g.size() + (p / w) * g.s + pad + p % w;
          sum_k += cur_k[e];
          sum_t += tk[e];
        }
      } else {
        for (std::int64_t p = 0; p < h * w; ++p) {
          sum_k += sum_vec(cur_k + p * g.size(), g.size());
          sum_t += sum_vec(tk + p * g.size(), g.size());
        }
      }
    }
    pooled_pixels = h * w;
  }
  if (flatten) return {sum_k / static_cast<double>(pooled_pixels), sum_t / static_cast<double>(pooled_pixels)};
  // gpool/gap: mean over every (g, g') = (1/|G|) Σ_h mean_{t,t'} B_h (MATH.md §5.1, §10).
  const double count = static_cast<double>(net.rotations()) * static_cast<double>(pooled_pixels) *
                       static_cast<double>(pooled_pixels);
  return {sum_k / count, sum_t / count};
}

}  // namespace

KernelValue spatial(const Network& net, const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                    const SelfChain& sx2, Workspace& ws, const BlockObserver* observer, SelfChain* record) {
  return ws.mixed ? spatial_impl<float>(net, x, sx, x2, sx2, ws, observer, record)
                  : spatial_impl<double>(net, x, sx, x2, sx2, ws, observer, record);
}

}  // namespace eqntk::kernel::detail::EQNTK_ISA_NS
