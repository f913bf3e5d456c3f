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
