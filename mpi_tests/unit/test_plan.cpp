// kernel::compile: the units, sizes, pads and slots a network compiles to, checked against the
// architecture strings by hand.
#include <gtest/gtest.h>

#include "eqntk/kernel/plan.hpp"

using namespace eqntk::kernel;
using namespace eqntk::data;

namespace {

Plan plan_of(const char* arch, std::int64_t c, std::int64_t h, std::int64_t w) {
  return compile(Network(Architecture::parse(arch), InputShape{c, h, w}));
}

}  // namespace

TEST(Plan, StandardP4NetworkFusesItsLastLayer) {
  const Plan p = plan_of("lift:k=3,relu,gconv:k=5:pad=valid:w=2:b=0.5,erf,gpool,dense", 2, 8, 8);
  ASSERT_EQ(p.units.size(), 5u);
  const auto& l0 = std::get<unit::Linear>(p.units[0]);
  EXPECT_TRUE(l0.first);
  EXPECT_EQ(l0.stage, 0u);
  EXPECT_EQ(l0.oh, 8);
  const auto& a = std::get<unit::Activation>(p.units[1]);
  EXPECT_EQ(a.kind, LayerKind::relu);
  EXPECT_EQ(a.stage, 1u);
  const auto& l1 = std::get<unit::Linear>(p.units[2]);
  EXPECT_FALSE(l1.first);
  EXPECT_EQ(l1.q, 5);
  EXPECT_EQ(l1.p, 2);
  EXPECT_EQ(l1.ih, 8);
  EXPECT_EQ(l1.oh, 4);
  EXPECT_DOUBLE_EQ(l1.scale, 4.0 / 25.0);
  EXPECT_DOUBLE_EQ(l1.bias, 0.25);
  EXPECT_EQ(std::get<unit::Readout>(p.units[4]).h, 4);
  EXPECT_EQ(p.blocks, 4);
  EXPECT_EQ(p.fusable_last, 2u);
  EXPECT_EQ(p.max_p, 2);
  EXPECT_EQ(p.linear_units(), 2);
  EXPECT_FALSE(p.diagonal_only);
  EXPECT_EQ(p.head.size(), 1u);
  EXPECT_EQ(p.input, (InputShape{2, 8, 8}));
}

TEST(Plan, CircularReadersAskForWrappedPads) {
  const Plan p = plan_of("conv:k=3,relu,conv:k=3:pad=circular,relu,conv:k=3,relu,gap,dense", 1, 6, 6);
  EXPECT_TRUE(std::get<unit::Linear>(p.units[0]).wrap_out);
  EXPECT_TRUE(std::get<unit::Activation>(p.units[1]).wrap_out);
  EXPECT_FALSE(std::get<unit::Linear>(p.units[2]).wrap_out);
  EXPECT_EQ(p.blocks, 1);
  EXPECT_EQ(p.fusable_last, 4u);
}

TEST(Plan, PoolingAndResidualBlocks) {
  const Plan p = plan_of("lift:k=3:group=p4m,relu,res(gconv:k=3,relu,res(gconv:k=1)),avgpool:s=2,gconv:k=3,relu,"
                         "flatten,dense,relu,dense",
                         1, 8, 8);
  // lift relu res gconv relu res gconv res_end res_end avgpool gconv relu flatten
  ASSERT_EQ(p.units.size(), 13u);
  EXPECT_EQ(std::get<unit::ResBegin>(p.units[2]).slot, 0);
  EXPECT_EQ(std::get<unit::ResBegin>(p.units[5]).slot, 1);
  EXPECT_EQ(std::get<unit::ResEnd>(p.units[7]).slot, 1);
  EXPECT_EQ(std::get<unit::ResEnd>(p.units[8]).slot, 0);
  const auto& pool = std::get<unit::AvgPool>(p.units[9]);
  EXPECT_EQ(pool.ih, 8);
  EXPECT_EQ(pool.oh, 4);
  EXPECT_EQ(std::get<unit::Readout>(p.units[12]).kind, LayerKind::flatten);
  EXPECT_EQ(p.saved_slots, 2);
  EXPECT_EQ(p.blocks, 1);  // flatten: the e block only
  EXPECT_FALSE(p.diagonal_only);
  EXPECT_TRUE(p.self_full);
  EXPECT_EQ(p.fusable_last, Plan::npos);
  EXPECT_EQ(p.group, eqntk::group::PointGroup::D4);
  EXPECT_EQ(p.head.size(), 3u);
}

TEST(Plan, FlattenWithoutPoolingIsDiagonalOnly) {
  const Plan p = plan_of("conv:k=3,relu,flatten,dense", 1, 5, 5);
  EXPECT_TRUE(p.diagonal_only);
  EXPECT_FALSE(p.self_full);
  EXPECT_EQ(p.fusable_last, Plan::npos);
}

TEST(Plan, AnMlpIsOnlyItsReadout) {
  const Plan p = plan_of("flatten,dense,relu,dense", 2, 3, 4);
  ASSERT_EQ(p.units.size(), 1u);
  const auto& r = std::get<unit::Readout>(p.units[0]);
  EXPECT_EQ(r.kind, LayerKind::flatten);
  EXPECT_EQ(r.h, 3);
  EXPECT_EQ(r.w, 4);
  EXPECT_TRUE(p.diagonal_only);
  EXPECT_EQ(p.linear_units(), 0);
  EXPECT_EQ(p.max_p, 0);
  EXPECT_EQ(p.input, (InputShape{2, 3, 4}));
  EXPECT_EQ(p.head.size(), 3u);
}
