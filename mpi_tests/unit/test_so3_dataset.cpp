// Tests of io/so3_dataset.hpp (SO(3) data sets, moved out of the CLI): load_so3_dataset selects exactly the
// rows the planar path (io::load_dataset) selects for files of the same length, labels and options (its
// documented contract), its items are those rows of the file as so3::load_signal_set reads them, and a
// label-count mismatch is one line naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "eqntk/error.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/io/so3_dataset.hpp"
#include "eqntk/so3/signal.hpp"

namespace {

namespace io = eqntk::io;
namespace fs = std::filesystem;

class So3DatasetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eqntk_so3_dataset_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // `n` items of C=2 channels of Driscoll-Healy samples at L=3: (n, 2, 6, 5), seeded normal values.
  void write_dh(const std::string& name, std::int64_t n, std::uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    std::vector<double> v(static_cast<std::size_t>(n * 2 * 6 * 5));
    for (double& x : v) x = normal(rng);
    const std::int64_t shape[4] = {n, 2, 6, 5};
    io::write_npy(path(name), shape, v);
  }
  // `n` 1x1 single-channel images (NHWC), the planar stand-in of the same data set.
  void write_images(const std::string& name, std::int64_t n) const {
    const std::int64_t shape[4] = {n, 1, 1, 1};
    io::write_npy(path(name), shape, std::vector<double>(static_cast<std::size_t>(n), 0.5));
  }
  void write_labels(const std::string& name, std::int64_t n, std::int64_t offset) const {
    std::vector<std::int64_t> y(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = (i + offset) % 3;
    const std::int64_t shape[1] = {n};
    io::write_npy(path(name), shape, y);
  }
  fs::path dir_;
};

TEST_F(So3DatasetFiles, SelectsThePlanarPathsRowsAndReadsThemFromTheFile) {
  write_dh("train.npy", 9, 1);
  write_dh("test.npy", 6, 2);
  write_images("train_img.npy", 9);
  write_images("test_img.npy", 6);
  write_labels("ytrain.npy", 9, 0);
  write_labels("ytest.npy", 6, 1);
  io::Preprocessing prep;
  prep.n_train = 5;
  prep.n_test = 4;
  prep.seed = 17;
  prep.standardize = false;

  const io::So3Dataset got =
      io::load_so3_dataset({path("train.npy"), path("ytrain.npy"), path("test.npy"), path("ytest.npy")}, {}, prep);
  const io::Dataset planar = io::load_dataset(
      {path("train_img.npy"), path("ytrain.npy"), path("test_img.npy"), path("ytest.npy")}, io::ImageLayout::nhwc, prep);

  EXPECT_EQ(got.items.kind, io::InputKind::dh);
  EXPECT_EQ(got.items.band_limit, 3);
  EXPECT_EQ(got.items.channels, 2);
  EXPECT_EQ(got.data.train.source_index, planar.train.source_index);
  EXPECT_EQ(got.data.test.source_index, planar.test.source_index);
  EXPECT_EQ(got.data.train.targets.classes, planar.train.targets.classes);
  EXPECT_EQ(got.data.test.targets.classes, planar.test.targets.classes);
  EXPECT_EQ(got.data.num_classes, planar.num_classes);
  ASSERT_EQ(got.items.count(0), 5);
  ASSERT_EQ(got.items.count(1), 4);

  const std::string names[2] = {"train.npy", "test.npy"};
  const std::vector<std::int64_t>* rows[2] = {&got.data.train.source_index, &got.data.test.source_index};
  for (int s = 0; s < 2; ++s) {
    const eqntk::so3::SignalSet file = eqntk::so3::load_signal_set(path(names[s]));
    for (std::size_t k = 0; k < rows[s]->size(); ++k)
      EXPECT_EQ(got.items.signals[s][k].coefficients(),
                file.items[static_cast<std::size_t>((*rows[s])[k])].coefficients())
          << names[s] << " row " << k;
  }
}

TEST_F(So3DatasetFiles, LabelCountMismatchNamesTheFile) {
  write_dh("train.npy", 4, 1);
  write_dh("test.npy", 3, 2);
  write_labels("ytrain.npy", 5, 0);
  write_labels("ytest.npy", 3, 0);
  try {
    (void)io::load_so3_dataset({path("train.npy"), path("ytrain.npy"), path("test.npy"), path("ytest.npy")}, {}, {});
    FAIL() << "expected InvalidArgument";
  } catch (const eqntk::InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("5 labels for 4 signals"), std::string::npos) << what;
    EXPECT_NE(what.find("train.npy"), std::string::npos) << what;
  }
}

}  // namespace
