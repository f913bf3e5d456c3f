#include <gtest/gtest.h>

#include "eqntk/error.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"

using eqntk::InvalidArgument;
using eqntk::kernel::Architecture;
using eqntk::kernel::LayerKind;
using eqntk::kernel::Network;
using eqntk::kernel::Padding;

namespace {

// Returns the message of the InvalidArgument thrown by parsing `text`, or "" if none was thrown.
std::string parse_error(const std::string& text) {
  try {
    (void)Architecture::parse(text);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Architecture, ParsesTheNotebookNetwork) {
  const auto a = Architecture::parse("lift:k=3:pad=same,relu,gconv:k=5:pad=circular:w=1.5:b=0.1,relu,gpool,dense:w=2");
  ASSERT_EQ(a.layers().size(), 6u);
  EXPECT_EQ(a.layers()[0].kind, LayerKind::lift);
  EXPECT_EQ(a.layers()[2].k, 5);
  EXPECT_EQ(a.layers()[2].pad, Padding::circular);
  EXPECT_DOUBLE_EQ(a.layers()[2].w, 1.5);
  EXPECT_DOUBLE_EQ(a.layers()[2].b, 0.1);
  EXPECT_DOUBLE_EQ(a.layers()[5].w, 2.0);
  EXPECT_TRUE(a.is_group_network());
}

TEST(Architecture, CanonicalFormSpellsOutDefaults) {
  EXPECT_EQ(Architecture::parse("conv,relu,gap,dense").canonical(),
            "conv:k=3:pad=same:w=1:b=0,relu,gap,dense:w=1:b=0");
  EXPECT_EQ(Architecture::parse(" conv:k=3 , relu,gap,dense ").canonical(),
            Architecture::parse("conv:k=3:pad=same:w=1:b=0,relu,gap,dense:w=1:b=0").canonical());
}

TEST(Architecture, RejectsEachRuleNamingTheToken) {
  struct Case {
    std::string text, token, rule;
  };
  const Case cases[] = {
      {"lift,relu,maxpool,dense", "'maxpool'", "unknown layer"},
      {"lift:k=4,gpool,dense", "'lift:k=4'", "odd"},
      {"lift:k=0,gpool,dense", "'lift:k=0'", "positive"},
      {"gconv,relu,gpool,dense", "'gconv'", "needs a preceding lift"},
      {"conv,gconv,gap,dense", "'gconv'", "needs a preceding lift"},
      {"lift,conv,gpool,dense", "'conv'", "conv after lift"},
      {"lift,lift,gpool,dense", "'lift'", "first spatial layer"},
      {"lift,relu,gpool,gpool,dense", "'gpool'", "pooling twice"},
      {"lift,relu,dense", "'dense'", "dense before pooling"},
      {"conv,relu,gpool,dense", "'gpool'", "needs a preceding lift"},
      {"lift,relu,gap,dense", "'gap'", "use gpool"},
      {"relu,conv,gap,dense", "'relu'", "not Gaussian"},
      {"conv,relu,relu,gap,dense", "'relu'", "two nonlinearities"},
      {"conv,relu,gap,relu,dense", "'relu'", "two nonlinearities"},
      {"lift,relu,gpool", "'gpool'", "dense readout"},
      {"lift,relu", "'relu'", "no readout"},
      {"lift:pad=reflect,gpool,dense", "'lift:pad=reflect'", "same, valid or circular"},
      {"lift:w=-1,gpool,dense", "'lift:w=-1'", "positive"},
      {"lift:w=abc,gpool,dense", "'lift:w=abc'", "finite number"},
      {"relu:k=3,gpool,dense", "'relu:k=3'", "takes no key"},
      {"dense:k=3", "'dense:k=3'", "takes no key"},
      {"lift,,gpool,dense", "''", "empty layer"},
      {"lift,gpool,dense,gconv", "'gconv'", "after pooling"},
      {"conv,gap,dense,conv", "'conv'", "after pooling"},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(c.text);
    EXPECT_NE(msg.find(c.token), std::string::npos) << c.text << " -> " << msg;
    EXPECT_NE(msg.find(c.rule), std::string::npos) << c.text << " -> " << msg;
  }
}

TEST(Architecture, AcceptsHeadNonlinearitiesAndFlattenOnTheInput) {
  EXPECT_EQ(parse_error("lift,relu,gconv,relu,gpool,dense,relu,dense"), "");
  EXPECT_EQ(parse_error("flatten,dense,erf,dense"), "");
  EXPECT_EQ(parse_error("lift,gpool,relu,dense"), "");  // pooling of Gaussian pre-activations stays Gaussian
  EXPECT_EQ(parse_error("conv,relu,gap,dense,relu"), "");
}

TEST(Network, RejectsC4LayersOnNonSquareImages) {
  EXPECT_THROW(Network(Architecture::parse("lift,gpool,dense"), {1, 4, 5}), InvalidArgument);
  EXPECT_NO_THROW(Network(Architecture::parse("conv,gap,dense"), {1, 4, 5}));
}

TEST(Network, TracksValidPaddingSizesAndRejectsTooSmallInputs) {
  const Network net(Architecture::parse("lift:k=3:pad=valid,relu,gconv:k=5:pad=valid,gpool,dense"), {2, 9, 9});
  EXPECT_EQ(net.stages()[0].h_out, 7);
  EXPECT_EQ(net.stages()[2].h_out, 3);
  EXPECT_EQ(net.rotations(), 4);
  EXPECT_EQ(net.spatial_linear_layers(), 2);
  EXPECT_THROW(Network(Architecture::parse("lift:k=3:pad=valid,relu,gconv:k=5:pad=valid,gpool,dense"), {2, 6, 6}),
               InvalidArgument);
}

// ---- groups, avgpool, res (MATH.md §10) and the nesting grammar ----------------------------------

TEST(Architecture, ParsesGroupsAvgpoolAndResidualBlocks) {
  const auto a = Architecture::parse(
      "lift:k=3:group=p4m,relu,gconv:k=3,relu,avgpool:s=2,res(gconv:k=3,relu,gconv:k=3),relu,gpool,dense");
  EXPECT_EQ(a.group(), eqntk::group::PointGroup::D4);
  ASSERT_EQ(a.layers().size(), 9u);
  EXPECT_EQ(a.layers()[4].kind, LayerKind::avgpool);
  EXPECT_EQ(a.layers()[4].s, 2);
  EXPECT_EQ(a.layers()[5].kind, LayerKind::res);
  ASSERT_EQ(a.layers()[5].body.size(), 3u);
  EXPECT_EQ(a.layers()[5].body[2].kind, LayerKind::gconv);
  EXPECT_EQ(Architecture::parse("lift:group=p4,gpool,dense").group(), eqntk::group::PointGroup::C4);
  EXPECT_EQ(Architecture::parse("conv,gap,dense").group(), eqntk::group::PointGroup::C1);
  for (const char* g : {"C1", "C2", "C4", "D1", "D2", "D4"})
    EXPECT_EQ(eqntk::group::name(Architecture::parse(std::string("lift:group=") + g + ",gpool,dense").group()), g);
}

TEST(Architecture, CanonicalFormsOfExistingNetworksAreUnchanged) {
  // Checkpoint identities hash these strings: C4 networks keep their text (no group key).
  EXPECT_EQ(Architecture::parse("lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense").canonical(),
            "lift:k=3:pad=same:w=1:b=0,relu,gconv:k=3:pad=same:w=1:b=0,relu,gpool,dense:w=1:b=0");
  EXPECT_EQ(Architecture::parse("lift:group=p4,gpool,dense").canonical(),
            Architecture::parse("lift,gpool,dense").canonical());
  EXPECT_EQ(Architecture::parse("lift:group=p4m,gconv,avgpool:s=3,res( gconv , relu,gconv),gpool,dense").canonical(),
            "lift:k=3:pad=same:w=1:b=0:group=D4,gconv:k=3:pad=same:w=1:b=0,avgpool:s=3,"
            "res(gconv:k=3:pad=same:w=1:b=0,relu,gconv:k=3:pad=same:w=1:b=0),gpool,dense:w=1:b=0");
  EXPECT_NE(Architecture::parse("lift:group=p4m,gpool,dense").canonical(),
            Architecture::parse("lift:group=p4,gpool,dense").canonical());
}

TEST(Architecture, RejectsEachRuleOfSection10NamingTheToken) {
  struct Case {
    std::string text, token, rule;
  };
  const Case cases[] = {
      {"lift:group=C3,gpool,dense", "'lift:group=C3'", "unknown group"},
      {"lift,gconv:group=D4,gpool,dense", "'gconv:group=D4'", "group= is a key of lift only"},
      {"conv:group=D4,gap,dense", "'conv:group=D4'", "group= is a key of lift only"},
      {"lift,gpool,avgpool:s=2,dense", "'avgpool:s=2'", "avgpool after a readout"},
      {"avgpool:s=2,conv,gap,dense", "'avgpool:s=2'", "needs spatial feature maps"},
      {"lift,avgpool:s=1,gpool,dense", "'avgpool:s=1'", "at least 2"},
      {"lift,avgpool:k=3,gpool,dense", "'avgpool:k=3'", "takes no key"},
      {"lift,res(relu,gconv),gpool,dense", "'res(relu,gconv)'", "start with a linear spatial layer"},
      {"lift,res(),gpool,dense", "''", "empty layer"},
      {"lift,res(gconv,avgpool:s=2),gpool,dense", "'avgpool:s=2'", "keep the spatial size"},
      {"lift,res(gconv,gpool),gpool,dense", "'gpool'", "cannot contain a readout"},
      {"lift,res(conv),gpool,dense", "'conv'", "conv after lift"},
      {"conv,res(gconv),gap,dense", "'gconv'", "needs a preceding lift"},
      {"res(conv),conv,gap,dense", "'res(conv)'", "needs spatial feature maps"},
      {"lift,gpool,res(gconv),dense", "'res(gconv)'", "after a readout"},
      {"lift,res,gpool,dense", "'res'", "in parentheses"},
      {"lift,relu(gconv),gpool,dense", "'relu(gconv)'", "only res takes"},
      {"lift,res(gconv,gpool,dense", "res(gconv,gpool,dense", "unbalanced parentheses"},
      {"lift,gconv),gpool,dense", "'gconv'", "unbalanced parentheses"},
      {"lift,res(gconv)x,gpool,dense", "'res(gconv)x'", "nothing may follow"},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(c.text);
    EXPECT_NE(msg.find(c.token), std::string::npos) << c.text << " -> " << msg;
    EXPECT_NE(msg.find(c.rule), std::string::npos) << c.text << " -> " << msg;
  }
}

TEST(Network, RejectsShapeRulesOfSection10) {
  const auto error = [](const std::string& arch, eqntk::data::InputShape shape) -> std::string {
    try {
      (void)Network(Architecture::parse(arch), shape);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error("lift,avgpool:s=3,gpool,dense", {1, 8, 8}).find("'avgpool:s=3'"), std::string::npos);
  EXPECT_NE(error("lift,avgpool:s=3,gpool,dense", {1, 8, 8}).find("divide"), std::string::npos);
  EXPECT_NE(error("lift:group=D4,gpool,dense", {1, 4, 6}).find("square"), std::string::npos);
  EXPECT_NE(error("lift,res(gconv:pad=valid),gpool,dense", {1, 6, 6}).find("keep the spatial size"), std::string::npos);
  // MATH.md §10: every group layer needs a square image, even groups whose elements map a rectangle to itself.
  EXPECT_NE(error("lift:group=D2,gpool,dense", {1, 4, 6}).find("square"), std::string::npos);
  EXPECT_NE(error("lift:group=C1,gpool,dense", {1, 4, 6}).find("'lift:group=C1'"), std::string::npos);
  const Network net(Architecture::parse("lift:group=D4,relu,res(gconv,relu,gconv),avgpool:s=2,gpool,dense"), {1, 8, 8});
  EXPECT_EQ(net.rotations(), 8);
  EXPECT_TRUE(net.has_avgpool());
  EXPECT_EQ(net.stages()[2].spec.kind, LayerKind::res);
  EXPECT_EQ(net.stages()[2].partner, 6u);
  EXPECT_EQ(net.stages()[6].spec.kind, LayerKind::res_end);
  EXPECT_EQ(net.stages()[7].h_out, 4);
  EXPECT_FALSE(Network(Architecture::parse("lift,avgpool:s=2,flatten,dense"), {1, 4, 4}).diagonal_only());
  EXPECT_TRUE(Network(Architecture::parse("lift,res(gconv),flatten,dense"), {1, 4, 4}).diagonal_only());
}
