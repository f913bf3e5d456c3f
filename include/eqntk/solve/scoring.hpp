// Scores of predictions against targets (MATH.md §6 target encoding): accuracy for class labels (argmax of
// the K outputs against the label), mean squared and absolute error over all N·K outputs. For classes the
// targets are the one-hot vectors minus 1/K, the encoding the predictors were trained on.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "eqntk/io/dataset.hpp"

namespace eqntk::solve {

struct Score {
  double accuracy = std::nan("");  ///< fraction of argmax hits; NaN for regression or no points
  std::int64_t correct = 0;        ///< argmax hits (classification)
  double mse = 0, mae = 0, rmse = 0;
};

/// Scores `predictions` (row-major count×k) against `targets` (classification: classes in [0, k); regression:
/// count×k values). Throws InvalidArgument when the sizes disagree.
[[nodiscard]] Score score(std::span<const double> predictions, std::int64_t k, const io::Targets& targets);

}  // namespace eqntk::solve
