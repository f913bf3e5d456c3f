#include "eqntk/kernel/head.hpp"

#include "eqntk/kernel/dual.hpp"

namespace eqntk::kernel {

KernelValue apply_head(const std::vector<HeadLayer>& head, KernelValue v, const double* q1_by_stage,
                       const double* q2_by_stage, double* record) {
  for (const HeadLayer& l : head) {
    if (l.dense) {
      const double kn = l.w2 * v.nngp + l.b2;
      v = {kn, kn + l.w2 * v.ntk};
    } else {
      if (record != nullptr) record[l.stage] = v.nngp;
      const double q1 = record != nullptr ? v.nngp : q1_by_stage[l.stage];
      const double q2 = record != nullptr ? v.nngp : q2_by_stage[l.stage];
      const DualValue d = dual(l.activation, q1, q2, v.nngp);
      v = {d.sigma, d.sigma_dot * v.ntk};
    }
  }
  return v;
}

}  // namespace eqntk::kernel
