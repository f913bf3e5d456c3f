#include "eqntk/solve/scoring.hpp"

#include <algorithm>
#include <string>

#include "eqntk/error.hpp"

namespace eqntk::solve {

Score score(std::span<const double> predictions, std::int64_t k, const io::Targets& targets) {
  const std::int64_t n = targets.count();
  if (k < 1 || static_cast<std::int64_t>(predictions.size()) != n * k ||
      (!targets.classification && static_cast<std::int64_t>(targets.values.size()) != n * k))
    throw InvalidArgument("score: " + std::to_string(predictions.size()) + " predictions for " + std::to_string(n) +
                          " targets of dimension " + std::to_string(k));
  Score s;
  double se = 0, ae = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double* row = predictions.data() + i * k;
    for (std::int64_t c = 0; c < k; ++c) {
      const double target = targets.classification ? (targets.classes[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0) -
                                                         1.0 / static_cast<double>(k)
                                                   : targets.values[static_cast<std::size_t>(i * k + c)];
      const double e = row[c] - target;
      se += e * e;
      ae += std::abs(e);
    }
    if (targets.classification && std::max_element(row, row + k) - row == targets.classes[static_cast<std::size_t>(i)])
      ++s.correct;
  }
  s.mse = n > 0 ? se / static_cast<double>(n * k) : 0;
  s.mae = n > 0 ? ae / static_cast<double>(n * k) : 0;
  s.rmse = std::sqrt(s.mse);
  if (targets.classification && n > 0) s.accuracy = static_cast<double>(s.correct) / static_cast<double>(n);
  return s;
}

}  // namespace eqntk::solve
