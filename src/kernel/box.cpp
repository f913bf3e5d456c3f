#include "eqntk/kernel/box.hpp"

#include <algorithm>

namespace eqntk::kernel {

std::array<BoxLine, 2> box_lines(group::Element h) {
  // t' moves by A_h (a, b) = a·A_h(1, 0) + b·A_h(0, 1). A_h is a signed permutation, so each unit vector
  // lands on one axis of t' (dim 2 = i', dim 3 = j') with a sign. Pass A carries the a-part, pass B the b-part.
  const auto line = [&](int du, group::Offset unit) {
    const group::Offset v = group::act(h, unit);
    return v.a != 0 ? BoxLine{du, 2, static_cast<int>(v.a)} : BoxLine{du, 3, static_cast<int>(v.b)};
  };
  return {line(0, {1, 0}), line(1, {0, 1})};
}

Dims4 box_output_dims(const Dims4& in, const BoxLine& line, int p, Padding pad) {
  Dims4 out = in;
  if (pad == Padding::valid) {
    out.n[line.du] -= 2 * p;
    out.n[line.dv] -= 2 * p;
  }
  return out;
}

namespace {

inline std::int64_t wrap(std::int64_t v, std::int64_t n) {
  v %= n;
  return v < 0 ? v + n : v;
}

// orow[o] += irow[o + shift] for o in [0, n_out), with in-range source [0, n_in) (zero padding) or
// wrapped source (circular).
inline void add_shifted_row(double* __restrict orow, const double* __restrict irow, std::int64_t n_out,
                            std::int64_t n_in, std::int64_t shift, bool circular) {
  const std::int64_t lo = std::max<std::int64_t>(0, -shift);
  const std::int64_t hi = std::min<std::int64_t>(n_out, n_in - shift);
  for (std::int64_t o = lo; o < hi; ++o) orow[o] += irow[o + shift];
  if (circular) {
    for (std::int64_t o = 0; o < std::min(lo, n_out); ++o) orow[o] += irow[wrap(o + shift, n_in)];
    for (std::int64_t o = std::max<std::int64_t>(hi, 0); o < n_out; ++o) orow[o] += irow[wrap(o + shift, n_in)];
  }
}

}  // namespace

void box_pass(const double* in, const Dims4& din, double* out, const BoxLine& line, int p, Padding pad,
              double scale, double bias, const double* add) {
  const Dims4 dout = box_output_dims(din, line, p, pad);
  const bool circular = pad == Padding::circular;
  std::array<std::int64_t, 4> off{0, 0, 0, 0};
  if (pad == Padding::valid) off[line.du] = off[line.dv] = p;
  const std::int64_t n_out3 = dout.n[3];
  for (std::int64_t o0 = 0; o0 < dout.n[0]; ++o0)
    for (std::int64_t o1 = 0; o1 < dout.n[1]; ++o1)
      for (std::int64_t o2 = 0; o2 < dout.n[2]; ++o2) {
        const std::int64_t orow_index = ((o0 * dout.n[1] + o1) * dout.n[2] + o2) * n_out3;
        double* orow = out + orow_index;
        // Accumulate in a local row so that `add` may alias `out`.
        double acc[1024];
        double* accp = n_out3 <= 1024 ? acc : orow;
        std::fill(accp, accp + n_out3, 0.0);
        for (int a = -p; a <= p; ++a) {
          std::array<std::int64_t, 4> idx{o0 + off[0], o1 + off[1], o2 + off[2], off[3]};
          idx[line.du] += a;
          idx[line.dv] += line.sign * a;
          bool in_range = true;
          for (int d = 0; d < 3; ++d) {
            if (idx[d] < 0 || idx[d] >= din.n[d]) {
              if (circular) idx[d] = wrap(idx[d], din.n[d]);
              else in_range = false;
            }
          }
          if (!in_range) continue;
          const double* irow = in + ((idx[0] * din.n[1] + idx[1]) * din.n[2] + idx[2]) * din.n[3];
          add_shifted_row(accp, irow, n_out3, din.n[3], idx[3], circular);
        }
        if (add != nullptr) {
          const double* arow = add + orow_index;
          for (std::int64_t o = 0; o < n_out3; ++o) orow[o] = scale * accp[o] + bias + arow[o];
        } else {
          for (std::int64_t o = 0; o < n_out3; ++o) orow[o] = scale * accp[o] + bias;
        }
      }
}

void box_2d(const double* in, std::int64_t h, std::int64_t w, double* out, int p, Padding pad, double scale,
            double bias, const double* add, std::int64_t& oh, std::int64_t& ow) {
  const std::int64_t off = pad == Padding::valid ? p : 0;
  oh = pad == Padding::valid ? h - 2 * p : h;
  ow = pad == Padding::valid ? w - 2 * p : w;
  for (std::int64_t i = 0; i < oh; ++i)
    for (std::int64_t j = 0; j < ow; ++j) {
      double s = 0.0;
      for (int a = -p; a <= p; ++a)
        for (int b = -p; b <= p; ++b) {
          std::int64_t si = i + off + a, sj = j + off + b;
          if (pad == Padding::circular) {
            si = wrap(si, h);
            sj = wrap(sj, w);
          } else if (si < 0 || si >= h || sj < 0 || sj >= w) {
            continue;
          }
          s += in[si * w + sj];
        }
      out[i * ow + j] = scale * s + bias + (add != nullptr ? add[i * ow + j] : 0.0);
    }
}

}  // namespace eqntk::kernel
