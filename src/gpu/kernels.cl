// OpenCL 1.2 C kernels of the planar kernel recursion (MATH.md §3–§5), float64 throughout. Embedded in
// the binary by CMake (src/gpu/CMakeLists.txt → kernels_cl.hpp) and built at run time for the chosen device.
//
// A batch holds `slots`: one slot is one rotation block B_Δ of one image pair (4 slots per pair for p4,
// 1 for a CNN). Every block is stored row-major [i][j][i'][j'] at slot·stride. The window sum of a layer
//   S(t, t') = Σ_{(a,b) ∈ {-p..p}²} A(t + (a, b), t' + M(a, b))
// for the slot's signed permutation M (R^Δ for p4; any element of a point group works the same way) runs
// as two 1-D passes: pass A over a moves dim 0 by a and dim dvA ∈ {2, 3} by sgnA·a (column 0 of M),
// pass B over b moves dim 1 by b and dim dvB by sgnB·b (column 1 of M). Pass B carries the fused epilogue:
// scale and bias, Θ' = K' + scale·S(Σ̇⊙Θ), the next nonlinearity's dual activation (needs the variance
// maps of both images), and — for the last spatial layer — the pooled sums, reduced in local memory.
//
// Slot table (int, 8 per slot): image a, image b (indices into the batch image table), dvA, sgnA, dvB,
// sgnB, pair index, unused. Padding codes: 0 same (zero), 1 valid, 2 circular. Activation codes: 0 none
// or id, 1 relu, 2 erf.
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
// Products and sums are rounded one by one as on the CPU (no contraction into fma).
#pragma OPENCL FP_CONTRACT OFF

#define PAD_SAME 0
#define PAD_VALID 1
#define PAD_CIRCULAR 2
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_ERF 2
#define SLOT_INTS 8

// 64·DBL_EPSILON: kernel/dual.hpp kCollinearSnap.
#define COLLINEAR_SNAP (64.0 * 2.220446049250313e-16)

// Index arithmetic within one slot is in int (the host checks that a block has < 2^31 entries): 64-bit
// division is slow on GPUs. Slot offsets are long.
inline int wrap_index(int v, int n) {
  v %= n;
  return v < 0 ? v + n : v;
}

// Source coordinate o + off + move in [0, n): -1 when zero padding drops it, wrapped when circular.
inline int source_index(int o, int off, int move, int n, int pad) {
  int s = o + off + move;
  if (s < 0 || s >= n) s = pad == PAD_CIRCULAR ? wrap_index(s, n) : -1;
  return s;
}

// Dual activation of one entry (MATH.md §4), the formulas of kernel/dual.hpp relu_dual / erf_dual:
// k ← Σ(q1, q2, k), t ← Σ̇(q1, q2, k)·t.
inline void dual_entry(int act, double q1, double q2, double* k, double* t) {
  const double pi = M_PI;
  if (act == ACT_RELU) {
    const double sq1 = sqrt(q1), sq2 = sqrt(q2);
    const double r1 = sq1 > 0 ? 1 / sq1 : 0.0, r2 = sq2 > 0 ? 1 / sq2 : 0.0;
    const double rho = clamp(*k * (r1 * r2), -1.0, 1.0);
    const double om = (1 - rho) * (1 + rho);
    const int collinear = om <= COLLINEAR_SNAP;
    const double theta = collinear ? (rho > 0 ? 0.0 : pi) : acos(rho);
    const double sin_theta = collinear ? 0.0 : sqrt(om);
    const double rest = (pi - theta) / (2 * pi);
    *k = sq1 * sq2 * (sin_theta / (2 * pi) + rest * rho);
    *t = *t * rest;
  } else if (act == ACT_ERF) {
    const double b1 = 1 / sqrt(1 + 2 * q1), b2 = 1 / sqrt(1 + 2 * q2);
    const double z = clamp(2 * *k * (b1 * b2), -1.0, 1.0);
    const double om = fmax((1 - z) * (1 + z), 1e-300);
    *k = (2 / pi) * asin(z);
    *t = *t * ((4 / pi) * (b1 * b2) / sqrt(om));
  }
}

// Sum of the two local arrays over the work-group (size a power of two); the result is in element 0.
inline void local_sum2(__local double* lk, __local double* lt) {
  const int lid = (int)get_local_id(0);
  for (int span = (int)get_local_size(0) / 2; span > 0; span /= 2) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < span) {
      lk[lid] += lk[lid + span];
      lt[lid] += lt[lid + span];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}

// ---- The window passes reading global memory directly (devices whose local memory is emulated in
// global memory, such as PoCL on a CPU: the marching variant below only adds barriers there).

// The 4-D index (o0, o1, o2, o3) of row-major entry e over dims (·, n1, n2, n3).
inline void unflatten4(const int e, const int n1, const int n2, const int n3, int* o) {
  o[3] = e % n3;
  int r = e / n3;
  o[2] = r % n2;
  r /= n2;
  o[1] = r % n1;
  o[0] = r / n1;
}

// Pass A of a layer: mid(o) = Σ_a in(o0 + off + a, o1, ..., o_dvA + off + sgnA·a, ...).
// from_images: the input kernel K⁰(t, t') = (1/C) Σ_c x_c(t) x'_c(t') is formed on the fly from the two
// images (first layer; Θ⁰ = 0 so no Θ pass). Global size: (≥ n_out, slots).
__kernel void pass_a(__global const double* in_k, __global const double* in_t, __global double* mid_k,
                     __global double* mid_t, __global const int* slot_table, __global const double* images,
                     const long stride, const int from_images, const int channels, const int ih, const int iw,
                     const int oh, const int ow, const int p, const int pad) {
  const long slot = get_global_id(1);
  __global const int* info = slot_table + slot * SLOT_INTS;
  const int dv = info[2], sgn = info[3];
  const int n0 = oh, n1 = iw, n2 = dv == 2 ? oh : ih, n3 = dv == 3 ? ow : iw;
  const int e = (int)get_global_id(0);
  if (e >= n0 * n1 * n2 * n3) return;
  int o[4];
  unflatten4(e, n1, n2, n3, o);
  const int off = pad == PAD_VALID ? p : 0;
  double sk = 0.0, st = 0.0;
  if (from_images) {
    const int plane = ih * iw;
    const long isize = (long)channels * plane;
    __global const double* xa = images + (long)info[0] * isize;
    __global const double* xb = images + (long)info[1] * isize;
    const double inv_c = 1.0 / channels;
    for (int a = -p; a <= p; ++a) {
      const int s0 = source_index(o[0], off, a, ih, pad);
      const int sv = source_index(o[dv], off, sgn * a, dv == 2 ? ih : iw, pad);
      if (s0 < 0 || sv < 0) continue;
      const int i2 = dv == 2 ? sv : o[2], j2 = dv == 3 ? sv : o[3];
      double k0 = 0.0;
      for (int c = 0; c < channels; ++c) k0 += xa[c * plane + s0 * iw + o[1]] * xb[c * plane + i2 * iw + j2] * inv_c;
      sk += k0;
    }
  } else {
    __global const double* bk = in_k + slot * stride;
    __global const double* bt = in_t + slot * stride;
    for (int a = -p; a <= p; ++a) {
      const int s0 = source_index(o[0], off, a, ih, pad);
      const int sv = source_index(o[dv], off, sgn * a, dv == 2 ? ih : iw, pad);
      if (s0 < 0 || sv < 0) continue;
      const int i2 = dv == 2 ? sv : o[2], j2 = dv == 3 ? sv : o[3];
      const int src = ((s0 * iw + o[1]) * ih + i2) * iw + j2;
      sk += bk[src];
      st += bt[src];
    }
  }
  mid_k[slot * stride + e] = sk;
  if (!from_images) mid_t[slot * stride + e] = st;
}

// Pass B of a layer with the fused epilogue. in dims are pass A's output for the slot; out dims
// (oh, ow, oh, ow). K' = scale·S_b(mid_k) + b2, Θ' = K' (first layer) or scale·S_b(mid_t) + K'; then the
// activation `act` with q1 = var[a][voff + (o0, o1)], q2 = var[b][voff + (o2, o3)]; then either stored, or
// (pool) summed: partial[slot·groups + group] over each work-group, in a fixed order. Global size:
// (groups·local, slots).
__kernel void pass_b(__global const double* mid_k, __global const double* mid_t, __global double* out_k,
                     __global double* out_t, __global const int* slot_table, __global const double* var,
                     __global double* part_k, __global double* part_t, __local double* lk, __local double* lt,
                     const long stride, const int first, const int ih, const int iw, const int oh, const int ow,
                     const int p, const int pad, const double scale, const double bias, const int act,
                     const long var_stride, const long var_offset, const int pool) {
  const long slot = get_global_id(1);
  __global const int* info = slot_table + slot * SLOT_INTS;
  const int dva = info[2], dv = info[4], sgn = info[5];
  // pass A's output dims (in) and this pass's (out)
  const int m2 = dva == 2 ? oh : ih, m3 = dva == 3 ? ow : iw;
  const int n = oh * ow * oh * ow;
  const int e = (int)get_global_id(0);
  double k = 0.0, t = 0.0;
  if (e < n) {
    int o[4];
    unflatten4(e, ow, oh, ow, o);
    const int off = pad == PAD_VALID ? p : 0;
    const int nv = dv == 2 ? m2 : m3;
    __global const double* bk = mid_k + slot * stride;
    __global const double* bt = mid_t + slot * stride;
    double sk = 0.0, st = 0.0;
    for (int b = -p; b <= p; ++b) {
      const int s1 = source_index(o[1], off, b, iw, pad);
      const int sv = source_index(o[dv], off, sgn * b, nv, pad);
      if (s1 < 0 || sv < 0) continue;
      const int i2 = dv == 2 ? sv : o[2], j2 = dv == 3 ? sv : o[3];
      const int src = ((o[0] * iw + s1) * m2 + i2) * m3 + j2;
      sk += bk[src];
      if (!first) st += bt[src];
    }
    k = scale * sk + bias;
    t = first ? k : scale * st + k;
    if (act != ACT_NONE) {
      const double q1 = var[info[0] * var_stride + var_offset + o[0] * ow + o[1]];
      const double q2 = var[info[1] * var_stride + var_offset + o[2] * ow + o[3]];
      dual_entry(act, q1, q2, &k, &t);
    }
    if (!pool) {
      out_k[slot * stride + e] = k;
      out_t[slot * stride + e] = t;
    }
  }
  if (pool) {
    const int lid = (int)get_local_id(0);
    lk[lid] = k;
    lt[lid] = t;
    local_sum2(lk, lt);
    if (lid == 0) {
      const long g = get_group_id(0), groups = get_num_groups(0);
      part_k[slot * groups + g] = lk[0];
      part_t[slot * groups + g] = lt[0];
    }
  }
}

// ---- The window passes, marching through local memory.
// A pass sums q = 2p + 1 entries along a line that moves a lead dim L (0 in pass A, 1 in pass B) by a and
// a trailing dim dv ∈ {2, 3} by sgn·a; the other lead dim F and the other trailing dim r stay. A
// work-group owns one value of F and a tile of T_v × T_r outputs over (dv, r) (T2 × T3 over dims 2, 3) and
// marches along L: the input planes it needs — for each source index along L, the (T_v + 2p) × T_r entries
// of its tile's window, padding applied on the way (0 where zero padding drops a source, the wrapped entry
// when circular) — pass through a ring of q planes in local memory, each loaded from global memory once
// (the naive pass reads every entry q times). Each output then sums its q entries from the ring, a = −p..p
// in order as the CPU engine. Planes are stored [l2][l3] (dims 2, 3 in global order: loads along dim 3
// are contiguous). Work-groups of a slot: N_F · ⌈N_dv/T_v⌉ · ⌈N_r/T_r⌉ (blocks needing fewer return).

typedef struct {
  int L, F, dv, r;  // dims
  int f, bv, br;    // this work-group's F index and tile origin along dv, r
  int Tv, Tr;       // tile extents along dv, r
  int E3, plane;    // plane row length (dim 3) and size, window included
} March;

// This work-group's tile for a block with lines (L, dv) and output dims N; 0 when it has none.
inline int march_of(March* m, int L, int dv, const int* N, int t2, int t3, int p, int g) {
  m->L = L;
  m->F = 1 - L;
  m->dv = dv;
  m->r = 5 - dv;
  m->Tv = dv == 2 ? t2 : t3;
  m->Tr = dv == 2 ? t3 : t2;
  const int nv = (N[dv] + m->Tv - 1) / m->Tv, nr = (N[m->r] + m->Tr - 1) / m->Tr;
  const int ir = g % nr;
  g /= nr;
  const int iv = g % nv;
  m->f = g / nv;
  if (m->f >= N[m->F]) return 0;
  m->bv = iv * m->Tv;
  m->br = ir * m->Tr;
  m->E3 = dv == 3 ? m->Tv + 2 * p : m->Tr;
  m->plane = (m->Tv + 2 * p) * m->Tr;
  return 1;
}

// Loads the window plane of source index v along L (v = o_L + off + a, before padding) into ring slot
// (v mod q): from the blocks bk/bt (input dims I), or — from_images — the input kernel K⁰ of the two images.
inline void load_plane(const March* m, int v, const int* I, const int* N, int p, int off, int pad,
                       __global const double* bk, __global const double* bt, int only_k, int from_images,
                       __global const double* xa, __global const double* xb, int channels, __local double* rk,
                       __local double* rt) {
  const int q = 2 * p + 1;
  const int sL = source_index(v, 0, 0, I[m->L], pad);
  const int base = ((v + q) % q) * m->plane;
  const int image_plane = I[2] * I[3];
  const double inv_c = 1.0 / channels;
  for (int idx = (int)get_local_id(0); idx < m->plane; idx += (int)get_local_size(0)) {
    const int l3 = idx % m->E3, l2 = idx / m->E3;
    const int lv = m->dv == 2 ? l2 : l3, lr = m->dv == 2 ? l3 : l2;
    const int sv = source_index(m->bv, off, lv - p, I[m->dv], pad);
    const int cr = m->br + lr;
    double vk = 0.0, vt = 0.0;
    if (sL >= 0 && sv >= 0 && cr < N[m->r]) {
      int c[4];
      c[m->L] = sL;
      c[m->F] = m->f;
      c[m->dv] = sv;
      c[m->r] = cr;
      if (from_images) {
        for (int ch = 0; ch < channels; ++ch)
          vk += xa[ch * image_plane + c[0] * I[1] + c[1]] * xb[ch * image_plane + c[2] * I[3] + c[3]] * inv_c;
      } else {
        const int src = ((c[0] * I[1] + c[1]) * I[2] + c[2]) * I[3] + c[3];
        vk = bk[src];
        if (!only_k) vt = bt[src];
      }
    }
    rk[base + idx] = vk;
    if (!only_k) rt[base + idx] = vt;
  }
}

// The output of this work-item at o_L (c: its coordinates) and its q-term sums from the ring; 0 when the
// work-item has no output in the block.
inline int march_sum(const March* m, int oL, const int* N, int p, int off, int sgn, int only_k,
                     __local const double* rk, __local const double* rt, int* c, double* sk, double* st) {
  const int lid = (int)get_local_id(0);
  if (lid >= m->Tv * m->Tr) return 0;
  const int T3 = m->dv == 3 ? m->Tv : m->Tr;
  const int t3 = lid % T3, t2 = lid / T3;
  const int tv = m->dv == 2 ? t2 : t3, tr = m->dv == 2 ? t3 : t2;
  c[m->L] = oL;
  c[m->F] = m->f;
  c[m->dv] = m->bv + tv;
  c[m->r] = m->br + tr;
  if (c[m->dv] >= N[m->dv] || c[m->r] >= N[m->r]) return 0;
  const int q = 2 * p + 1;
  double ak = 0.0, at = 0.0;
  for (int a = -p; a <= p; ++a) {
    const int lv = tv + sgn * a + p;
    const int idx = ((oL + off + a + q) % q) * m->plane + (m->dv == 2 ? lv * m->E3 + tr : tr * m->E3 + lv);
    ak += rk[idx];
    if (!only_k) at += rt[idx];
  }
  *sk = ak;
  *st = at;
  return 1;
}

// pass_a through local memory: input dims
// (ih, iw, ih, iw), output (oh, iw, n2, n3) with dim dvA reduced. from_images: the input kernel
// K⁰(t, t') = (1/C) Σ_c x_c(t) x'_c(t') is formed from the two images while loading (first layer; Θ⁰ = 0 so
// no Θ pass). Tiles t2 × t3; rk, rt hold q planes. Global size: (groups · local, slots).
__kernel void pass_a_local(__global const double* in_k, __global const double* in_t, __global double* mid_k,
                     __global double* mid_t, __global const int* slot_table, __global const double* images,
                     __local double* rk, __local double* rt, const long stride, const int from_images,
                     const int channels, const int ih, const int iw, const int oh, const int ow, const int p,
                     const int pad, const int t2, const int t3) {
  const long slot = get_global_id(1);
  __global const int* info = slot_table + slot * SLOT_INTS;
  const int dv = info[2], sgn = info[3];
  const int I[4] = {ih, iw, ih, iw};
  const int N[4] = {oh, iw, dv == 2 ? oh : ih, dv == 3 ? ow : iw};
  March m;
  if (!march_of(&m, 0, dv, N, t2, t3, p, (int)get_group_id(0))) return;
  const int off = pad == PAD_VALID ? p : 0;
  const long isize = (long)channels * ih * iw;
  __global const double* bk = in_k + slot * stride;
  __global const double* bt = in_t + slot * stride;
  __global const double* xa = images + info[0] * isize;
  __global const double* xb = images + info[1] * isize;
  for (int v = off - p; v < off + p; ++v)
    load_plane(&m, v, I, N, p, off, pad, bk, bt, from_images, from_images, xa, xb, channels, rk, rt);
  for (int oL = 0; oL < N[0]; ++oL) {
    load_plane(&m, oL + off + p, I, N, p, off, pad, bk, bt, from_images, from_images, xa, xb, channels, rk, rt);
    barrier(CLK_LOCAL_MEM_FENCE);
    int c[4];
    double sk = 0.0, st = 0.0;
    if (march_sum(&m, oL, N, p, off, sgn, from_images, rk, rt, c, &sk, &st)) {
      const int e = ((c[0] * N[1] + c[1]) * N[2] + c[2]) * N[3] + c[3];
      mid_k[slot * stride + e] = sk;
      if (!from_images) mid_t[slot * stride + e] = st;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
}

// pass_b through local memory: input dims pass A's output (oh, iw, m2, m3), output
// (oh, ow, oh, ow). K' = scale·S_b(mid_k) + b2, Θ' = K' (first layer) or scale·S_b(mid_t) + K'; then the
// activation `act` with q1 = var[a][voff + (o0, o1)], q2 = var[b][voff + (o2, o3)]; then either stored, or
// (pool) summed: each work-item adds its outputs in march order, the work-group's sums are reduced in
// local memory into partial[slot·groups + group] (0 for a work-group with no tile in this slot).
// Global size: (groups · local, slots).
__kernel void pass_b_local(__global const double* mid_k, __global const double* mid_t, __global double* out_k,
                     __global double* out_t, __global const int* slot_table, __global const double* var,
                     __global double* part_k, __global double* part_t, __local double* rk, __local double* rt,
                     __local double* lk, __local double* lt, const long stride, const int first, const int ih,
                     const int iw, const int oh, const int ow, const int p, const int pad, const double scale,
                     const double bias, const int act, const long var_stride, const long var_offset, const int pool,
                     const int t2, const int t3) {
  const long slot = get_global_id(1);
  __global const int* info = slot_table + slot * SLOT_INTS;
  const int dva = info[2], dv = info[4], sgn = info[5];
  const int I[4] = {oh, iw, dva == 2 ? oh : ih, dva == 3 ? ow : iw};
  const int N[4] = {oh, ow, oh, ow};
  const long g = get_group_id(0), groups = get_num_groups(0);
  const int lid = (int)get_local_id(0);
  March m;
  if (!march_of(&m, 1, dv, N, t2, t3, p, (int)g)) {
    if (pool && lid == 0) {
      part_k[slot * groups + g] = 0.0;
      part_t[slot * groups + g] = 0.0;
    }
    return;
  }
  const int off = pad == PAD_VALID ? p : 0;
  __global const double* bk = mid_k + slot * stride;
  __global const double* bt = mid_t + slot * stride;
  for (int v = off - p; v < off + p; ++v) load_plane(&m, v, I, N, p, off, pad, bk, bt, first, 0, 0, 0, 1, rk, rt);
  double pk = 0.0, pt = 0.0;
  for (int oL = 0; oL < N[1]; ++oL) {
    load_plane(&m, oL + off + p, I, N, p, off, pad, bk, bt, first, 0, 0, 0, 1, rk, rt);
    barrier(CLK_LOCAL_MEM_FENCE);
    int c[4];
    double sk = 0.0, st = 0.0;
    if (march_sum(&m, oL, N, p, off, sgn, first, rk, rt, c, &sk, &st)) {
      double k = scale * sk + bias;
      double t = first ? k : scale * st + k;
      if (act != ACT_NONE) {
        const double q1 = var[info[0] * var_stride + var_offset + c[0] * ow + c[1]];
        const double q2 = var[info[1] * var_stride + var_offset + c[2] * ow + c[3]];
        dual_entry(act, q1, q2, &k, &t);
      }
      if (pool) {
        pk += k;
        pt += t;
      } else {
        const int e = ((c[0] * N[1] + c[1]) * N[2] + c[2]) * N[3] + c[3];
        out_k[slot * stride + e] = k;
        out_t[slot * stride + e] = t;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (pool) {
    lk[lid] = pk;
    lt[lid] = pt;
    local_sum2(lk, lt);
    if (lid == 0) {
      part_k[slot * groups + g] = lk[0];
      part_t[slot * groups + g] = lt[0];
    }
  }
}

// Same-position chain (flatten readouts): c(t) = K_{t,t}(x, x') on h×w maps, one slot per pair.
// diag_input: K⁰(t, t) = (1/C) Σ_c x_c(t) x'_c(t), Θ⁰ = 0.
__kernel void diag_input(__global double* k, __global double* t, __global const int* slot_table,
                         __global const double* images, const long stride, const int channels, const int h,
                         const int w) {
  const long slot = get_global_id(1);
  const long e = get_global_id(0);
  if (e >= (long)h * w) return;
  __global const int* info = slot_table + slot * SLOT_INTS;
  const long plane = (long)h * w, isize = channels * plane;
  __global const double* xa = images + (long)info[0] * isize;
  __global const double* xb = images + (long)info[1] * isize;
  const double inv_c = 1.0 / channels;
  double s = 0.0;
  for (int c = 0; c < channels; ++c) s += xa[c * plane + e] * xb[c * plane + e] * inv_c;
  k[slot * stride + e] = s;
  t[slot * stride + e] = 0.0;
}

// One conv-type layer on the diagonal: a q×q window sum of an h×w map (the window is C4-symmetric, so Δ
// plays no role), K' = scale·S(K) + b2, Θ' = scale·S(Θ) + K', then the activation with the two images'
// variance maps at the same position. record (self chains, image a = image b): the variances are K' itself,
// and K' is written to the image's variance map instead of read from it (MATH §4: the diagonal recursion).
__kernel void diag_layer(__global const double* in_k, __global const double* in_t, __global double* out_k,
                         __global double* out_t, __global const int* slot_table, __global double* var,
                         const long stride, const int ih, const int iw, const int oh, const int ow, const int p,
                         const int pad, const double scale, const double bias, const int act, const long var_stride,
                         const long var_offset, const int record) {
  const long slot = get_global_id(1);
  const long e = get_global_id(0);
  if (e >= (long)oh * ow) return;
  __global const int* info = slot_table + slot * SLOT_INTS;
  const int i = (int)e / ow, j = (int)e % ow, off = pad == PAD_VALID ? p : 0;
  __global const double* bk = in_k + slot * stride;
  __global const double* bt = in_t + slot * stride;
  double sk = 0.0, st = 0.0;
  for (int a = -p; a <= p; ++a) {
    const int si = source_index(i, off, a, ih, pad);
    if (si < 0) continue;
    for (int b = -p; b <= p; ++b) {
      const int sj = source_index(j, off, b, iw, pad);
      if (sj < 0) continue;
      sk += bk[si * iw + sj];
      st += bt[si * iw + sj];
    }
  }
  double k = scale * sk + bias;
  double t = scale * st + k;
  if (record) var[info[0] * var_stride + var_offset + e] = k;
  if (act != ACT_NONE) {
    const double q1 = record ? k : var[info[0] * var_stride + var_offset + e];
    const double q2 = record ? k : var[info[1] * var_stride + var_offset + e];
    dual_entry(act, q1, q2, &k, &t);
  }
  out_k[slot * stride + e] = k;
  out_t[slot * stride + e] = t;
}

// Sums n values of each slot (entries slot·stride + e·step, e < n, in both arrays) into sum[slot] with
// one work-group per slot, in a fixed order (deterministic for a given local size). step = 1: a whole
// block or partial sums; step = h·w + 1: the same-position entries of an h×w block (flatten after avgpool).
__kernel void reduce_slots(__global const double* in_k, __global const double* in_t, __global double* sum_k,
                           __global double* sum_t, __local double* lk, __local double* lt, const long stride,
                           const long n, const long step) {
  const long slot = get_group_id(1);
  const int lid = (int)get_local_id(0), l = (int)get_local_size(0);
  double ak = 0.0, at = 0.0;
  for (long e = lid; e < n; e += l) {
    ak += in_k[slot * stride + e * step];
    at += in_t[slot * stride + e * step];
  }
  lk[lid] = ak;
  lt[lid] = at;
  local_sum2(lk, lt);
  if (lid == 0) {
    sum_k[slot] = lk[0];
    sum_t[slot] = lt[0];
  }
}

// A nonlinearity on a stored state, in place: (K, Θ) → (Σ, Σ̇⊙Θ) with q1 = var[a][voff + pos1],
// q2 = var[b][voff + pos2]. Full blocks (diag = 0) of h·w positions a side: entry e = pos1·hw + pos2;
// same-position maps (diag = 1): pos1 = pos2 = e. Global size: (≥ n, slots).
__kernel void activate(__global double* k, __global double* t, __global const int* slot_table,
                       __global const double* var, const long stride, const int hw, const int diag, const int act,
                       const long var_stride, const long var_offset) {
  const long slot = get_global_id(1);
  const int e = (int)get_global_id(0);
  if (e >= (diag ? hw : hw * hw)) return;
  __global const int* info = slot_table + slot * SLOT_INTS;
  const int p1 = diag ? e : e / hw, p2 = diag ? e : e % hw;
  double kv = k[slot * stride + e], tv = t[slot * stride + e];
  dual_entry(act, var[info[0] * var_stride + var_offset + p1], var[info[1] * var_stride + var_offset + p2], &kv, &tv);
  k[slot * stride + e] = kv;
  t[slot * stride + e] = tv;
}

// Self chains (image a = image b): the variance map before a nonlinearity is the e-block's same-position
// entries of the pre-activation K (MATH.md §4, §10), written to image a's var record. Only the slots of
// block e (slot table entry 7 = 0) write. step = h·w + 1 on full blocks, 1 on same-position maps.
// Global size: (≥ h·w, slots).
__kernel void record_var(__global const double* k, __global const int* slot_table, __global double* var,
                         const long stride, const int hw, const int step, const long var_stride,
                         const long var_offset) {
  const long slot = get_global_id(1);
  const int e = (int)get_global_id(0);
  __global const int* info = slot_table + slot * SLOT_INTS;
  if (e >= hw || info[7] != 0) return;
  var[info[0] * var_stride + var_offset + e] = k[slot * stride + (long)e * step];
}

// avgpool (MATH.md §10) of each slot's block: out(T, T') = (1/s⁴) Σ_{t∈T} Σ_{t'∈T'} in(t, t') on both K and
// Θ, summed in the CPU engine's order (for each t' of T', the s² terms over t, then the s² such sums).
// in: ih×iw positions a side; out: oh×ow. Global size: (≥ (oh·ow)², slots).
__kernel void avgpool(__global const double* in_k, __global const double* in_t, __global double* out_k,
                      __global double* out_t, const long stride, const int ih, const int iw, const int oh,
                      const int ow, const int s, const double inv) {
  const long slot = get_global_id(1);
  const int e = (int)get_global_id(0);
  if (e >= oh * ow * oh * ow) return;
  const int o3 = e % ow, o2 = (e / ow) % oh, o1 = (e / (ow * oh)) % ow, o0 = e / (ow * oh * ow);
  __global const double* bk = in_k + slot * stride;
  __global const double* bt = in_t + slot * stride;
  double vk = 0.0, vt = 0.0;
  for (int d2 = 0; d2 < s; ++d2)
    for (int d3 = 0; d3 < s; ++d3) {
      const int second = (o2 * s + d2) * iw + o3 * s + d3;
      double ak = 0.0, at = 0.0;
      for (int d0 = 0; d0 < s; ++d0)
        for (int d1 = 0; d1 < s; ++d1) {
          const int src = ((o0 * s + d0) * iw + o1 * s + d1) * (ih * iw) + second;
          ak += bk[src];
          at += bt[src];
        }
      vk += ak;
      vt += at;
    }
  out_k[slot * stride + e] = inv * vk;
  out_t[slot * stride + e] = inv * vt;
}

// End of a res block (MATH.md §10): K += K_saved, Θ += Θ_saved over the first n entries of each slot.
// Global size: (≥ n, slots).
__kernel void add_saved(__global double* k, __global double* t, __global const double* saved_k,
                        __global const double* saved_t, const long stride, const int n) {
  const long slot = get_global_id(1);
  const int e = (int)get_global_id(0);
  if (e >= n) return;
  k[slot * stride + e] += saved_k[slot * stride + e];
  t[slot * stride + e] += saved_t[slot * stride + e];
}
