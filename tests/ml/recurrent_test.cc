// Copyright 2026 The Kiln Authors.
// LSTM and GRU: the functional forms against the step equations written
// here in double (forward, reverse, masked), gradients with respect to the
// input and every weight against finite differences in float64, and the
// layers: variables, bidirectional and multi-layer composition, padded
// sequences ending with their real steps' state, and the error messages.
#include "kiln/ml/layers/recurrent.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/context/exec.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using graph::Node;
using ml::layers::RecurrentResult;
using tensors::Tensor;
using testing::FromDoubles;
using testing::Uniform;
using testing::ToDoubles;

class RecurrentTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, RecurrentTest,
                         ::testing::ValuesIn(testing::BackendsSupporting(ir::OpType::kWhile)));
// Empty where no backend tested has the op (KILN_TEST_BACKENDS=cuda).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(RecurrentTest);


double Sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

// The reference: one direction, every step written out. gates(t, b, j) is
// x W + b; the recurrent part is added per step. Returns outputs [b, t, u]
// followed by the final h (and c for the LSTM).
struct Ref {
  std::vector<double> outputs, h, c;
};

Ref RefSequence(bool lstm, const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& u,
                const std::vector<double>& bias, const std::vector<double>& recurrent_bias,
                const std::vector<bool>& mask, int64_t batch, int64_t time, int64_t in, int64_t units, bool reverse) {
  const int64_t groups = lstm ? 4 : 3, width = groups * units;
  Ref r{std::vector<double>(static_cast<size_t>(batch * time * units), 0.0),
        std::vector<double>(static_cast<size_t>(batch * units), 0.0),
        std::vector<double>(static_cast<size_t>(batch * units), 0.0)};
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> h(static_cast<size_t>(units), 0.0), c(static_cast<size_t>(units), 0.0);
    for (int64_t step = 0; step < time; ++step) {
      const int64_t t = reverse ? time - 1 - step : step;
      if (!mask.empty() && !mask[static_cast<size_t>(b * time + t)]) continue;  // state kept, output 0
      std::vector<double> gx(static_cast<size_t>(width)), gh(static_cast<size_t>(width));
      for (int64_t j = 0; j < width; ++j) {
        double sx = bias[static_cast<size_t>(j)], sh = recurrent_bias.empty() ? 0 : recurrent_bias[static_cast<size_t>(j)];
        for (int64_t k = 0; k < in; ++k) sx += x[static_cast<size_t>((b * time + t) * in + k)] * w[static_cast<size_t>(k * width + j)];
        for (int64_t k = 0; k < units; ++k) sh += h[static_cast<size_t>(k)] * u[static_cast<size_t>(k * width + j)];
        gx[static_cast<size_t>(j)] = sx;
        gh[static_cast<size_t>(j)] = sh;
      }
      std::vector<double> h2(static_cast<size_t>(units));
      for (int64_t j = 0; j < units; ++j) {
        auto at = [&](const std::vector<double>& v, int64_t group) { return v[static_cast<size_t>(group * units + j)]; };
        if (lstm) {
          const double i = Sigmoid(at(gx, 0) + at(gh, 0)), f = Sigmoid(at(gx, 1) + at(gh, 1));
          const double g = std::tanh(at(gx, 2) + at(gh, 2)), o = Sigmoid(at(gx, 3) + at(gh, 3));
          c[static_cast<size_t>(j)] = f * c[static_cast<size_t>(j)] + i * g;
          h2[static_cast<size_t>(j)] = o * std::tanh(c[static_cast<size_t>(j)]);
        } else {
          const double rg = Sigmoid(at(gx, 0) + at(gh, 0)), z = Sigmoid(at(gx, 1) + at(gh, 1));
          const double n = std::tanh(at(gx, 2) + rg * at(gh, 2));
          h2[static_cast<size_t>(j)] = (1 - z) * n + z * h[static_cast<size_t>(j)];
        }
      }
      h = h2;
      for (int64_t j = 0; j < units; ++j) r.outputs[static_cast<size_t>((b * time + t) * units + j)] = h[static_cast<size_t>(j)];
    }
    for (int64_t j = 0; j < units; ++j) {
      r.h[static_cast<size_t>(b * units + j)] = h[static_cast<size_t>(j)];
      r.c[static_cast<size_t>(b * units + j)] = c[static_cast<size_t>(j)];
    }
  }
  return r;
}

// Right-padded lengths 5, 3, 0 (an all-padding sequence) of 5 steps.
std::vector<bool> Lengths() {
  std::vector<bool> mask;
  for (int64_t len : {5, 3, 0}) {
    for (int64_t t = 0; t < 5; ++t) mask.push_back(t < len);
  }
  return mask;
}

Tensor MaskTensor(const std::vector<bool>& mask) {
  Tensor t(shapes::Make(dtypes::Bool, 3, 5));
  auto flat = t.MutableFlat<bool>();
  for (size_t i = 0; i < mask.size(); ++i) flat[i] = mask[i];
  return t;
}

TEST_P(RecurrentTest, SequencesMatchTheStepEquations) {
  const int64_t batch = 3, time = 5, in = 4, units = 3;
  for (bool lstm : {true, false}) {
    for (bool reverse : {false, true}) {
      for (bool masked : {false, true}) {
        SCOPED_TRACE(::testing::Message() << (lstm ? "LSTM" : "GRU") << (reverse ? " reverse" : "")
                                          << (masked ? " masked" : ""));
        const int64_t width = (lstm ? 4 : 3) * units;
        const Tensor x = Uniform({batch, time, in}, -1, 1, 1), w = Uniform({in, width}, -1, 1, 2);
        const Tensor u = Uniform({units, width}, -1, 1, 3);
        const Tensor b = Uniform({width}, -1, 1, 4), rb = Uniform({width}, -1, 1, 5);
        const std::vector<bool> mask = masked ? Lengths() : std::vector<bool>{};
        std::vector<Tensor> args = {x, w, u, b, rb};
        if (masked) args.push_back(MaskTensor(mask));
        const auto out = testing::Run(Backend(), [&](const std::vector<Node>& p) {
          Node m = masked ? p[5] : Node();
          const RecurrentResult r =
              lstm ? ml::layers::LstmSequence(p[0], {p[1], p[2], p[3]}, m, reverse)
                   : ml::layers::GruSequence(p[0], {p[1], p[2], p[3], p[4]}, m, reverse);
          std::vector<Node> nodes = {r.outputs, r.h[0]};
          if (lstm) nodes.push_back(r.c[0]);
          return nodes;
        }, args);
        const Ref ref = RefSequence(lstm, ToDoubles(x), ToDoubles(w), ToDoubles(u), ToDoubles(b),
                                    lstm ? std::vector<double>{} : ToDoubles(rb), mask, batch, time, in, units, reverse);
        EXPECT_TRUE(testing::AllClose(out[0], shapes::Make(dtypes::Float64, batch, time, units), ref.outputs, 1e-12, 1e-14));
        EXPECT_TRUE(testing::AllClose(out[1], shapes::Make(dtypes::Float64, batch, units), ref.h, 1e-12, 1e-14));
        if (lstm) {
          EXPECT_TRUE(testing::AllClose(out[2], shapes::Make(dtypes::Float64, batch, units), ref.c, 1e-12, 1e-14));
        }
      }
    }
  }
}

TEST_P(RecurrentTest, GradientsMatchFiniteDifferences) {
  const int64_t units = 2;
  const Tensor x = Uniform({2, 4, 3}, -1, 1, 11), h0 = Uniform({2, units}, -1, 1, 12);
  const Tensor c0 = Uniform({2, units}, -1, 1, 13);
  Tensor mask(shapes::Make(dtypes::Bool, 2, 4));
  auto flat = mask.MutableFlat<bool>();
  for (int i = 0; i < 8; ++i) flat[static_cast<size_t>(i)] = i != 3 && i != 7 && i != 6;  // lengths 3 and 2
  EXPECT_TRUE(testing::CheckGradients(
      Backend(),
      [](const std::vector<Node>& p) {
        const RecurrentResult r = ml::layers::LstmSequence(p[0], {p[1], p[2], p[3]}, p[6], false, p[4], p[5]);
        return graph::Concatenate({graph::Reshape(r.outputs, {16}), graph::Reshape(r.h[0], {4}),
                                   graph::Reshape(r.c[0], {4})}, 0);
      },
      {x, Uniform({3, 4 * units}, -1, 1, 14), Uniform({units, 4 * units}, -1, 1, 15), Uniform({4 * units}, -1, 1, 16),
       h0, c0, mask},
      {.skip = {6}}))
      << "LSTM";
  EXPECT_TRUE(testing::CheckGradients(
      Backend(),
      [](const std::vector<Node>& p) {
        const RecurrentResult r = ml::layers::GruSequence(p[0], {p[1], p[2], p[3], p[4]}, Node(), true, p[5]);
        return graph::Concatenate({graph::Reshape(r.outputs, {16}), graph::Reshape(r.h[0], {4})}, 0);
      },
      {x, Uniform({3, 3 * units}, -1, 1, 17), Uniform({units, 3 * units}, -1, 1, 18), Uniform({3 * units}, -1, 1, 19),
       Uniform({3 * units}, -1, 1, 20), h0}))
      << "GRU";
}

// Runs `fn` in a fresh context on x and returns its outputs and the context.
std::pair<std::vector<Tensor>, Context> RunLayer(const std::shared_ptr<backends::Backend>& backend,
                                                 const std::function<std::vector<Node>(Context, Node)>& fn,
                                                 const Tensor& x, Context ctx = context::New()) {
  auto exec = context::NewExec(backend, ctx, [&](Context c, Node in) { return fn(c, in); });
  return {exec.Call(x), ctx};
}

TEST_P(RecurrentTest, BidirectionalLayersComposeTheDirections) {
  const Tensor x = Uniform({3, 5, 4}, -1, 1, 31);
  for (bool lstm : {true, false}) {
    SCOPED_TRACE(lstm ? "LSTM" : "GRU");
    const ml::layers::RecurrentOptions options{.num_layers = 2, .bidirectional = true};
    // Not a structured binding: Clang 14 cannot capture those in lambdas.
    const auto run = RunLayer(Backend(), [&](Context c, Node in) {
      const RecurrentResult r = lstm ? ml::layers::LSTM(c.In("rnn"), in, 3, options)
                                     : ml::layers::GRU(c.In("rnn"), in, 3, options);
      std::vector<Node> nodes = {r.outputs};
      nodes.insert(nodes.end(), r.h.begin(), r.h.end());
      return nodes;
    }, x);
    const std::vector<Tensor>& out = run.first;
    Context ctx = run.second;
    EXPECT_EQ(out[0].Shape(), shapes::Make(dtypes::Float64, 3, 5, 6));
    ASSERT_EQ(out.size(), 5u);  // outputs, then h of 2 layers x 2 directions
    const int64_t width = (lstm ? 4 : 3) * 3;
    auto var = [&](const std::string& name) { return ctx.GetVariableByScopeAndName(name); };
    ASSERT_NE(var("/rnn/layer_0/forward/kernel"), nullptr);
    EXPECT_EQ(var("/rnn/layer_0/forward/kernel")->Shape(), shapes::Make(dtypes::Float64, 4, width));
    EXPECT_EQ(var("/rnn/layer_1/backward/kernel")->Shape(), shapes::Make(dtypes::Float64, 6, width));
    EXPECT_EQ(var("/rnn/layer_1/backward/recurrent_kernel")->Shape(), shapes::Make(dtypes::Float64, 3, width));
    EXPECT_EQ(var("/rnn/layer_0/forward/recurrent_bias") != nullptr, !lstm);
    // PyTorch's initialization: uniform in ±1/sqrt(units) (variance k^2 / 3).
    for (const char* name : {"/rnn/layer_0/forward/kernel", "/rnn/layer_1/backward/kernel"}) {
      const std::vector<double> values = ToDoubles(var(name)->Value());
      double sum_squares = 0;
      for (double v : values) {
        EXPECT_LE(std::abs(v), 1 / std::sqrt(3.0)) << name;
        sum_squares += v * v;
      }
      EXPECT_NEAR(sum_squares / static_cast<double>(values.size()), 1.0 / 9, 0.05) << name;  // >= 3.5 sigma
    }
    const std::vector<double> bias = ToDoubles(var("/rnn/layer_1/backward/bias")->Value());
    const auto [lo, hi] = std::minmax_element(bias.begin(), bias.end());
    EXPECT_GE(*lo, -1 / std::sqrt(3.0));
    EXPECT_LE(*hi, 1 / std::sqrt(3.0));
    EXPECT_GT(*hi - *lo, 0.3) << "biases are random, not constant";
    // The last layer, recomputed from its variables with the functional forms.
    auto weights = [&](const std::string& d) {
      std::vector<Tensor> w;
      for (const char* n : {"kernel", "recurrent_kernel", "bias", "recurrent_bias"}) {
        if (lstm && std::string(n) == "recurrent_bias") continue;
        w.push_back(var("/rnn/layer_1/" + d + "/" + n)->Value());
      }
      return w;
    };
    const std::vector<Tensor> first = RunLayer(Backend(), [&](Context c, Node in) {
      const RecurrentResult r = lstm ? ml::layers::LSTM(c.In("rnn"), in, 3, {.num_layers = 1, .bidirectional = true})
                                     : ml::layers::GRU(c.In("rnn"), in, 3, {.num_layers = 1, .bidirectional = true});
      return std::vector<Node>{r.outputs};
    }, x, ctx).first;
    for (int d = 0; d < 2; ++d) {
      std::vector<Tensor> args = {first[0]};
      for (const Tensor& t : weights(d == 0 ? "forward" : "backward")) args.push_back(t);
      const auto direct = testing::Run(Backend(), [&](const std::vector<Node>& p) {
        const RecurrentResult r = lstm ? ml::layers::LstmSequence(p[0], {p[1], p[2], p[3]}, Node(), d == 1)
                                       : ml::layers::GruSequence(p[0], {p[1], p[2], p[3], p[4]}, Node(), d == 1);
        return std::vector<Node>{graph::SliceAxis(r.outputs, 2, 0, 3), r.h[0]};
      }, args);
      const std::vector<double> all = ToDoubles(out[0]);
      std::vector<double> half;
      for (size_t i = 0; i < all.size(); i += 6) half.insert(half.end(), all.begin() + static_cast<long>(i) + 3 * d,
                                                                 all.begin() + static_cast<long>(i) + 3 * d + 3);
      EXPECT_TRUE(testing::AllClose(direct[0], shapes::Make(dtypes::Float64, 3, 5, 3), half, 1e-12, 1e-14));
      EXPECT_TRUE(testing::AllClose(direct[1], out[static_cast<size_t>(3 + d)], 1e-12, 1e-14));
    }
  }
}

TEST_P(RecurrentTest, PaddedSequencesEndWithTheirRealStepsState) {
  // Sequence 1 has 3 real steps of 5: its final states, in both directions,
  // are those of the 3-step sequence alone.
  const Tensor x = Uniform({3, 5, 4}, -1, 1, 41);
  const std::vector<double> xv = ToDoubles(x);
  const Tensor short_x = FromDoubles(shapes::Make(dtypes::Float64, 1, 3, 4),
                                     std::vector<double>(xv.begin() + 20, xv.begin() + 32));
  Context ctx = context::New();
  const ml::layers::RecurrentOptions padded{.bidirectional = true, .mask = Node()};
  auto run = [&](const Tensor& in, bool with_mask) {
    auto exec = context::NewExec(Backend(), ctx, [&](Context c, Node n, Node m) {
      ml::layers::RecurrentOptions o = padded;
      if (with_mask) o.mask = m;
      const RecurrentResult r = ml::layers::LSTM(c.In("lstm"), n, 2, o);
      return std::vector<Node>{r.outputs, r.h[0], r.h[1], r.c[0], r.c[1]};
    });
    return exec.Call(in, with_mask ? MaskTensor(Lengths()) : Tensor(shapes::Make(dtypes::Bool, 1, 3)));
  };
  const auto full = run(x, true);
  const auto alone = run(short_x, false);
  for (size_t k = 1; k < 5; ++k) {
    const std::vector<double> f = ToDoubles(full[k]);
    EXPECT_TRUE(testing::AllClose(alone[k], shapes::Make(dtypes::Float64, 1, 2), {f[2], f[3]}, 1e-12, 1e-14)) << k;
    EXPECT_EQ(f[4], 0.0) << "the all-padding sequence keeps the zero state";
    EXPECT_EQ(f[5], 0.0) << "the all-padding sequence keeps the zero state";
  }
  const std::vector<double> outputs = ToDoubles(full[0]);
  for (int64_t t = 3; t < 5; ++t) {
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(outputs[static_cast<size_t>((5 + t) * 4 + j)], 0.0) << "padded output";
  }
}

TEST(RecurrentErrors, BadInputsNameTheLayer) {
  auto backend = backends::NewWithName("cpu");
  auto fails = [&](const std::function<void(Context, Node)>& fn, const Tensor& x) {
    auto exec = context::NewExec(backend, context::New(), [&](Context c, Node n) {
      fn(c, n);
      return n;
    });
    exec.Call(x);
  };
  const Tensor x = Uniform({2, 3, 4}, -1, 1, 51);
  KILN_EXPECT_ERROR(fails([](Context c, Node n) { ml::layers::LSTM(c, graph::Reshape(n, {6, 4}), 3); }, x),
                    "layers::LSTM: x must be [batch, time, features], got Float64[6, 4]");
  KILN_EXPECT_ERROR(fails([](Context c, Node n) { ml::layers::GRU(c, n, 0); }, x), "layers::GRU: units must be >= 1, got 0");
  KILN_EXPECT_ERROR(fails([](Context c, Node n) { ml::layers::GRU(c, n, 2, {.num_layers = 0}); }, x),
                    "layers::GRU: num_layers must be >= 1, got 0");
  KILN_EXPECT_ERROR(fails([](Context c, Node n) { ml::layers::LSTM(c, n, 2, {.dropout = 1.0}); }, x),
                    "layers::LSTM: dropout must be in [0, 1), got 1");
  KILN_EXPECT_ERROR(fails([](Context c, Node n) {
                      ml::layers::LSTM(c, n, 2, {.mask = graph::Const(n.Graph(), std::vector<bool>{true, false})});
                    }, x),
                    "layers::LSTM: mask must be Bool[2, 3] ([batch, time]), got Bool[2]");
  KILN_EXPECT_ERROR(fails([](Context, Node n) {
                      ml::layers::LstmSequence(n, {graph::ZerosLike(n), graph::ZerosLike(n), graph::ZerosLike(n)});
                    }, x),
                    "layers::LSTM: recurrent_kernel must be [units, 4 units], got Float64[2, 3, 4]");
  auto gru = [&](int64_t kernel_in, int64_t bias_width, int64_t h0_units) {
    fails([=](Context, Node n) {
      graph::Graph* g = n.Graph();
      auto zeros = [&](std::vector<int64_t> dims) { return graph::Zeros(g, shapes::Shape(dtypes::Float64, dims)); };
      ml::layers::GruSequence(n, {zeros({kernel_in, 6}), zeros({2, 6}), zeros({bias_width}), zeros({6})}, Node(),
                              false, zeros({2, h0_units}));
    }, x);
  };
  KILN_EXPECT_ERROR(gru(3, 6, 2), "layers::GRU: kernel must be Float64[4, 6] for x Float64[2, 3, 4], got Float64[3, 6]");
  KILN_EXPECT_ERROR(gru(4, 5, 2), "layers::GRU: biases must be Float64[6], got Float64[5]");
  KILN_EXPECT_ERROR(gru(4, 6, 3), "layers::GRU: initial states must be Float64[2, 2], got Float64[2, 3]");
}

}  // namespace
}  // namespace kiln
