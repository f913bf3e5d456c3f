// Layout, scheduling and offset arithmetic at the sizes of a full job (N = 10⁶), on one rank and without
// allocating any matrix: block-cyclic ownership, the tiles and pairs each rank owns, ScaLAPACK's int
// limits, and the 64-bit byte offsets of MPI-IO outputs and checkpoint records.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "eqntk/parallel/block_cyclic.hpp"

namespace {

using eqntk::parallel::BlockCyclic1D;
using eqntk::parallel::TileCounts;

constexpr std::int64_t kMillion = 1'000'000;
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

// Tiles and pairs of one rank counted the slow way: every owned block, every entry (as gram_builder
// enumerates them), independent of owned_tiles' closed forms.
TileCounts enumerate_tiles(std::int64_t n, std::int64_t m, std::int64_t nb, int prows, int pcols, int myrow, int mycol) {
  TileCounts c;
  const auto add = [&](std::int64_t rows_n, bool lower) {
    for (std::int64_t r0 = 0; r0 < rows_n; r0 += nb)
      for (std::int64_t c0 = 0; c0 < n; c0 += nb) {
        if ((r0 / nb) % prows != myrow || (c0 / nb) % pcols != mycol || (lower && c0 > r0)) continue;
        ++c.tiles;
        for (std::int64_t i = r0; i < std::min(r0 + nb, rows_n); ++i)
          for (std::int64_t j = c0; j < std::min(c0 + nb, n); ++j) c.pairs += (!lower || i >= j) ? 1 : 0;
      }
  };
  add(n, true);
  add(m, false);
  return c;
}

TEST(Layout, OwnedTilesMatchEntryByEntryEnumeration) {
  for (const std::int64_t n : {1, 5, 16, 37})
    for (const std::int64_t m : {0, 1, 9})
      for (const std::int64_t nb : {1, 2, 4, 7})
        for (const auto& [p, q] : {std::pair{1, 1}, std::pair{1, 2}, std::pair{2, 1}, std::pair{2, 3}, std::pair{3, 2}})
          for (int r = 0; r < p; ++r)
            for (int c = 0; c < q; ++c) {
              const TileCounts want = enumerate_tiles(n, m, nb, p, q, r, c);
              const TileCounts got = eqntk::parallel::owned_tiles(n, m, nb, p, q, r, c);
              EXPECT_EQ(got.tiles, want.tiles) << n << " " << m << " " << nb << " " << p << "x" << q << " @" << r << "," << c;
              EXPECT_EQ(got.pairs, want.pairs) << n << " " << m << " " << nb << " " << p << "x" << q << " @" << r << "," << c;
            }
}

TEST(Layout, WorkedExampleOfTheHeader) {
  EXPECT_EQ(eqntk::parallel::owned_tiles(5, 0, 2, 1, 2, 0, 0).pairs, 10);
  EXPECT_EQ(eqntk::parallel::owned_tiles(5, 0, 2, 1, 2, 0, 1).pairs, 5);
  EXPECT_EQ(eqntk::parallel::owned_tiles(5, 0, 2, 1, 2, 0, 0).tiles, 4);
}

TEST(Layout, PairsAndTilesOfAMillionImagesSumToTheClosedForms) {
  const std::int64_t n = kMillion, m = 100'000, nb = 64;
  const std::int64_t blocks = (n + nb - 1) / nb, test_blocks = (m + nb - 1) / nb;  // 15625, 1563
  const TileCounts total = eqntk::parallel::total_tiles(n, m, nb);
  EXPECT_EQ(total.pairs, n * (n + 1) / 2 + m * n);  // 6.000005e11: past 2³¹ and 2³²
  EXPECT_EQ(total.tiles, blocks * (blocks + 1) / 2 + test_blocks * blocks);
  for (const auto& [p, q] : {std::pair{8, 8}, std::pair{7, 9}, std::pair{1, 64}}) {
    TileCounts sum;
    std::int64_t max_pairs = 0;
    for (int r = 0; r < p; ++r)
      for (int c = 0; c < q; ++c) {
        const TileCounts t = eqntk::parallel::owned_tiles(n, m, nb, p, q, r, c);
        sum += t;
        max_pairs = std::max(max_pairs, t.pairs);
      }
    EXPECT_EQ(sum.pairs, total.pairs) << p << "x" << q;
    EXPECT_EQ(sum.tiles, total.tiles) << p << "x" << q;
    // Block-cyclic balance: no rank has more than its share plus one block row/column of work.
    const double share = static_cast<double>(total.pairs) / (p * q);
    EXPECT_LT(static_cast<double>(max_pairs), share * 1.02) << p << "x" << q;
  }
}

TEST(Layout, BlockCyclicIndicesRoundTripAtAMillion) {
  const BlockCyclic1D d{kMillion + 17, 64, 7};
  std::int64_t sum = 0;
  for (int p = 0; p < d.nprocs; ++p) sum += d.local_size(p);
  EXPECT_EQ(sum, d.n);
  for (const std::int64_t g : {std::int64_t{0}, std::int64_t{63}, std::int64_t{64}, std::int64_t{448}, kMillion - 1,
                               kMillion, kMillion + 16}) {
    const int owner = d.owner(g);
    EXPECT_EQ(owner, (g / 64) % 7);
    EXPECT_LT(d.local_index(g), d.local_size(owner));
    EXPECT_EQ(d.global_index(d.local_index(g), owner), g);
  }
  // The last index is the last local index of its owner.
  const std::int64_t last = d.n - 1;
  EXPECT_EQ(d.local_index(last), d.local_size(d.owner(last)) - 1);
}

TEST(Layout, ScalapackIntLimitsAreCheckedPerLocalMatrix) {
  // 10⁶ × 10⁶ in 64-blocks on 8×8: 15 625 blocks, 1954 of them on process row/column 0, so
  // (1954·64)² = 125 056² = 1.6·10¹⁰ local entries, past int indexing.
  EXPECT_EQ(eqntk::parallel::max_local_part(kMillion, kMillion, 64, 8, 8), std::int64_t{125'056} * 125'056);
  try {
    eqntk::parallel::check_scalapack_sizes("the training matrix", kMillion, kMillion, 64, 8, 8);
    FAIL() << "no error for 1.6e10 local entries";
  } catch (const eqntk::InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the training matrix (1000000x1000000) on a 8x8 grid"), std::string::npos) << what;
    EXPECT_NE(what.find("use more ranks"), std::string::npos) << what;
  }
  // On 32×32: 489 blocks on process 0, (489·64)² = 31 296² = 9.8·10⁸ < 2³¹: accepted.
  EXPECT_NO_THROW(eqntk::parallel::check_scalapack_sizes("the training matrix", kMillion, kMillion, 64, 32, 32));
  EXPECT_LE(eqntk::parallel::max_local_part(kMillion, kMillion, 64, 32, 32), kIntMax);
  EXPECT_THROW(eqntk::parallel::check_scalapack_sizes("a matrix", kIntMax + 1, 1, 1, 1, 1), eqntk::InvalidArgument);
}

TEST(Layout, EigenWorkspaceFollowsTheDocumentedFormula) {
  EXPECT_EQ(eqntk::parallel::pdsyevr_lwork(10, 3, 2, 2), 282);  // worked in the header
  // A million on 32×32: NP0·MQ0 = 31 296², plus 2·64², (2 + ⌈10⁶/1024⌉)·10⁶ and 5·10⁶ + 2: below 2³¹.
  const std::int64_t big = eqntk::parallel::pdsyevr_lwork(kMillion, 64, 32, 32);
  EXPECT_EQ(big, 2 + 5 * kMillion + std::int64_t{31'296} * 31'296 + 2 * 64 * 64 + (2 + 977) * kMillion);
  EXPECT_LT(big, kIntMax);
}

TEST(Layout, FileOffsetsOfAMillionSquaredMatrixAre64Bit) {
  const std::int64_t header = 128;
  const std::int64_t last = eqntk::parallel::npy_entry_offset(header, kMillion - 1, kMillion - 1, kMillion);
  EXPECT_EQ(last, 128 + 7'999'999'999'992);  // 8·(10¹² − 1) past the header
  EXPECT_GT(last, std::int64_t{1} << 32);
  // The checkpoint of the whole training matrix in 64×64 tiles: every record offset fits in int64.
  const std::int64_t blocks = (kMillion + 63) / 64;
  const std::int64_t full_tiles = blocks * (blocks + 1) / 2;
  const std::int64_t bytes = full_tiles * eqntk::parallel::checkpoint_record_bytes(64, 64);
  EXPECT_EQ(eqntk::parallel::checkpoint_record_bytes(64, 64), 56 + 2 * 64 * 64 * 8);
  EXPECT_EQ(bytes, std::int64_t{122'078'125} * 65'592);
  EXPECT_GT(bytes, std::int64_t{1} << 40);
}

TEST(Layout, HeldImagesAreTheRowsAndColumnsOfTheOwnedTiles) {
  // Every image a rank's tiles touch is held, and nothing else: compared with the tile enumeration.
  const std::int64_t n = 23, m = 9, nb = 3;
  for (const auto& [p, q] : {std::pair{1, 1}, std::pair{2, 3}, std::pair{3, 2}})
    for (int r = 0; r < p; ++r)
      for (int c = 0; c < q; ++c) {
        std::vector<char> train(n, 0), test(m, 0);
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t j = 0; j <= i; ++j)
            if ((i / nb) % p == r && (j / nb) % q == c) train[i] = train[j] = 1;
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j)
            if ((i / nb) % p == r && (j / nb) % q == c) test[i] = train[j] = 1;
        const auto held = eqntk::parallel::held_images(n, m, nb, p, q, r, c);
        std::vector<std::int64_t> want_train, want_test;
        for (std::int64_t i = 0; i < n; ++i)
          if (train[i]) want_train.push_back(i);
        for (std::int64_t i = 0; i < m; ++i)
          if (test[i]) want_test.push_back(i);
        EXPECT_EQ(held.train, want_train) << p << "x" << q << " @" << r << "," << c;
        EXPECT_EQ(held.test, want_test) << p << "x" << q << " @" << r << "," << c;
      }
  // At a million training images in 15 625 blocks on 8×8, rank (0, 1) holds the row blocks 8, 16, …
  // (block 0 has no owned column block at or left of it) and the column blocks 1, 9, …: 1953 + 1953
  // blocks of 64 images, not 10⁶ images.
  const auto big = eqntk::parallel::held_images(kMillion, 0, 64, 8, 8, 0, 1);
  EXPECT_EQ(static_cast<std::int64_t>(big.train.size()), (1953 + 1953) * 64);
}

}  // namespace
