// Copyright 2026 The Kiln Authors.
// Optimizers: single and multi-step updates against hand computations and a
// double-precision reference, weight decay, clipping, learning-rate
// schedules, the global step, state variables, FromContext, errors and
// convergence on a quadratic.
#include "kiln/ml/optimizers/optimizers.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kiln/context/exec.h"
#include "kiln/graph/ops.h"
#include "tests/testing/testing.h"

namespace kiln::ml::optimizers {
namespace {

using context::Context;
using context::Variable;
using graph::Node;
using testing::AllClose;
using testing::FromDoubles;
using testing::ToDoubles;

// ------------------------------------------------------------- Problem.

// loss(w) = sum(0.5 a w^2 + c w): gradient a w + c, minimum at -c / a. With
// a = 0 the gradient is the constant c, which makes hand computations easy.
struct Quadratic {
  std::vector<double> w0, a, c;
};

Node QuadraticLoss(Node w, const Quadratic& q) {
  const shapes::Shape shape = w.Shape();
  Node a = graph::Const(w.Graph(), FromDoubles(shape, q.a));
  Node c = graph::Const(w.Graph(), FromDoubles(shape, q.c));
  return graph::ReduceAllSum(a * graph::Square(w) * 0.5 + c * w);
}

std::vector<double> Gradient(const Quadratic& q, const std::vector<double>& w) {
  std::vector<double> g(w.size());
  for (size_t i = 0; i < w.size(); ++i) g[i] = q.a[i] * w[i] + q.c[i];
  return g;
}

// Creates "/w" (or `scope`/w) with q.w0 in `dtype` and returns a stepper that
// runs one UpdateGraph per call on the quadratic and returns w afterwards.
class Stepper {
 public:
  Stepper(const std::string& backend, Context ctx, std::shared_ptr<Optimizer> opt, const Quadratic& q,
          dtypes::DType dtype = dtypes::Float32)
      : ctx_(ctx),
        var_(ctx.VariableWithValue("w", FromDoubles(shapes::Make(dtype, {static_cast<int64_t>(q.w0.size())}), q.w0))),
        exec_(context::NewExec(backends::NewWithName(backend), ctx, Fn{var_, opt, q})) {}

  std::vector<double> Step() {
    exec_.Call(0.0f);
    return ToDoubles(var_->Value());
  }
  Variable* Var() const { return var_; }
  size_t CacheSize() const { return exec_.CacheSize(); }

 private:
  struct Fn {
    Variable* var;
    std::shared_ptr<Optimizer> opt;
    Quadratic q;
    Node operator()(Context c, Node x) const {
      Node loss = QuadraticLoss(var->ValueGraph(x.Graph()), q);
      opt->UpdateGraph(c, loss);
      return loss;
    }
  };
  Context ctx_;
  Variable* var_;
  context::Exec<Fn> exec_;
};

// -------------------------------------------- Reference (double) updates.

// Hyperparameters of the reference, with the library's defaults.
struct Hyper {
  double lr = 0.001, wd = 0, momentum = 0;
  bool nesterov = false;
  double b1 = 0.9, b2 = 0.999, eps = 1e-7, rho = 0.9, initial = 0.1;
};

// `steps` updates of `algo` from q.w0, written from the formulas in the
// optimizer sources; returns w after each step.
std::vector<std::vector<double>> Reference(const std::string& algo, const Hyper& h, const Quadratic& q, int steps) {
  std::vector<double> w = q.w0, s1(w.size(), 0), s2(w.size(), 0);
  if (algo == "adagrad") s1.assign(w.size(), h.initial);
  std::vector<std::vector<double>> out;
  for (int t = 1; t <= steps; ++t) {
    std::vector<double> g = Gradient(q, w);
    for (size_t i = 0; i < w.size(); ++i) {
      const double w_old = w[i];
      if (algo != "adamw") g[i] += h.wd * w_old;  // L2 weight decay
      if (algo == "sgd") {
        s1[i] = h.momentum * s1[i] + g[i];  // v = mu v + g
        const double d = h.momentum == 0 ? g[i] : (h.nesterov ? g[i] + h.momentum * s1[i] : s1[i]);
        w[i] -= h.lr * d;
      } else if (algo == "adam" || algo == "adamw") {
        s1[i] = h.b1 * s1[i] + (1 - h.b1) * g[i];         // m
        s2[i] = h.b2 * s2[i] + (1 - h.b2) * g[i] * g[i];  // v
        const double m_hat = s1[i] / (1 - std::pow(h.b1, t)), v_hat = s2[i] / (1 - std::pow(h.b2, t));
        w[i] -= h.lr * m_hat / (std::sqrt(v_hat) + h.eps);
        if (algo == "adamw") w[i] -= h.lr * h.wd * w_old;  // decoupled
      } else if (algo == "rmsprop") {
        s1[i] = h.rho * s1[i] + (1 - h.rho) * g[i] * g[i];  // mean square
        const double step = h.lr * g[i] / std::sqrt(s1[i] + h.eps);
        s2[i] = h.momentum * s2[i] + step;  // momentum buffer (= step when momentum is 0)
        w[i] -= s2[i];
      } else if (algo == "adagrad") {
        s1[i] += g[i] * g[i];
        w[i] -= h.lr * g[i] / std::sqrt(s1[i] + h.eps);
      }
    }
    out.push_back(w);
  }
  return out;
}

::testing::AssertionResult Near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])))) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

const Quadratic kConstGrad{{1, 2}, {0, 0}, {0.5, -1.5}};         // gradient [0.5, -1.5] everywhere
const Quadratic kBowl{{1, -2, 3}, {1, 2, 0.5}, {-0.5, 1, 0.25}};  // minimum [0.5, -0.5, -0.5]

class OptimizersTest : public ::testing::TestWithParam<std::string> {};

// ------------------------------------------------------------------ SGD.

TEST_P(OptimizersTest, SgdOneStepKnownNumbers) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.1);
  Stepper t(GetParam(), ctx, SGD(), kConstGrad);
  // w - lr g = [1 - 0.05, 2 + 0.15]. Tolerance 1e-6 (Float32).
  EXPECT_TRUE(Near(t.Step(), {0.95, 2.15}, 1e-6));

  Context defaults = context::New();  // SGD's default learning rate is 0.01
  Stepper d(GetParam(), defaults, SGD(), kConstGrad);
  EXPECT_TRUE(Near(d.Step(), {0.995, 2.015}, 1e-6));
}

TEST_P(OptimizersTest, SgdMomentumTwoSteps) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.1);
  ctx.SetParam("momentum", 0.9);
  Stepper t(GetParam(), ctx, SGD(), kConstGrad);
  // v1 = g, w1 = w0 - 0.1 g; v2 = 0.9 g + g = 1.9 g, w2 = w1 - 0.19 g = w0 - 0.29 g.
  EXPECT_TRUE(Near(t.Step(), {1 - 0.05, 2 + 0.15}, 1e-6));
  EXPECT_TRUE(Near(t.Step(), {1 - 0.29 * 0.5, 2 + 0.29 * 1.5}, 1e-6));
}

TEST_P(OptimizersTest, SgdNesterovTwoSteps) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.1);
  ctx.SetParam("momentum", 0.9);
  ctx.SetParam("nesterov", true);
  Stepper t(GetParam(), ctx, SGD(), kConstGrad);
  // d = g + mu v: v1 = g, d1 = 1.9 g; v2 = 1.9 g, d2 = g + 1.71 g = 2.71 g.
  // w1 = w0 - 0.19 g; w2 = w1 - 0.271 g = w0 - 0.461 g.
  EXPECT_TRUE(Near(t.Step(), {1 - 0.19 * 0.5, 2 + 0.19 * 1.5}, 1e-6));
  EXPECT_TRUE(Near(t.Step(), {1 - 0.461 * 0.5, 2 + 0.461 * 1.5}, 1e-6));
  // On a curved loss, against the reference for 5 steps.
  Context bowl = context::New();
  bowl.SetParam("learning_rate", 0.1);
  bowl.SetParam("momentum", 0.9);
  bowl.SetParam("nesterov", true);
  Stepper b(GetParam(), bowl, SGD(), kBowl);
  const auto want = Reference("sgd", {.lr = 0.1, .momentum = 0.9, .nesterov = true}, kBowl, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Near(b.Step(), want[static_cast<size_t>(i)], 1e-5)) << "step " << i;
}

// ----------------------------------------------------------------- Adam.

TEST_P(OptimizersTest, AdamOneStepKnownNumbers) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.1);
  Stepper t(GetParam(), ctx, Adam(), kConstGrad);
  // Step 1: m = 0.1 g, v = 0.001 g^2; m_hat = m / (1 - 0.9) = g,
  // v_hat = v / (1 - 0.999) = g^2, so w -= 0.1 g / (|g| + 1e-7).
  const double step0 = 0.1 * 0.5 / (0.5 + 1e-7), step1 = 0.1 * 1.5 / (1.5 + 1e-7);
  // Within Float32's rounding of w: the bias corrections 1 - b^t keep their
  // digits (1 - Pow(0.999f, 1) in Float32 is 1.3e-5 off, which moved w by
  // 6e-7; a GPU's powf error, amplified 1000 times, by more).
  EXPECT_TRUE(Near(t.Step(), {1 - step0, 2 + step1}, 1e-7));
}

TEST_P(OptimizersTest, AdamMatchesReferenceInEveryFloatDType) {
  for (dtypes::DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::Float16, dtypes::BFloat16}) {
    SCOPED_TRACE(dtypes::Name(dtype));
    Context ctx = context::New();
    ctx.SetParam("learning_rate", 0.05);
    Stepper t(GetParam(), ctx, Adam(), kBowl, dtype);
    const auto want = Reference("adam", {.lr = 0.05}, kBowl, 4);
    // Half variables are rounded to their dtype after each step; compare
    // with a few ulps of slack (Tolerance: 1e-2 half, 1e-5 f32, 1e-12 f64).
    const double tol = dtype == dtypes::Float64 ? 1e-12 : 4 * testing::Tolerance(dtype);
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(Near(t.Step(), want[static_cast<size_t>(i)], tol)) << "step " << i;
    EXPECT_EQ(t.Var()->DType(), dtype);
    // State of half variables is kept in Float32.
    const dtypes::DType state = dtypes::IsHalf(dtype) ? dtypes::Float32 : dtype;
    EXPECT_EQ(ctx.GetVariableByScopeAndName("/optimizers/adam/w/m")->DType(), state);
  }
}

TEST_P(OptimizersTest, AdamWDecoupledDecayDiffersFromAdamL2) {
  auto first_step = [&](std::shared_ptr<Optimizer> opt) {
    Context ctx = context::New();
    ctx.SetParam("learning_rate", 0.1);
    ctx.SetParam("weight_decay", 0.1);
    return Stepper(GetParam(), ctx, opt, kConstGrad).Step();
  };
  // Adam, L2: g' = g + 0.1 w = [0.6, -1.3]; first step ~ w - 0.1 sign(g').
  EXPECT_TRUE(Near(first_step(Adam()), {1 - 0.1 * 0.6 / (0.6 + 1e-7), 2 + 0.1 * 1.3 / (1.3 + 1e-7)}, 1e-6));
  // AdamW: w - 0.1 sign(g) - lr wd w = [1 - 0.1 - 0.01, 2 + 0.1 - 0.02].
  EXPECT_TRUE(Near(first_step(AdamW()), {1 - 0.1 * 0.5 / (0.5 + 1e-7) - 0.01, 2 + 0.1 * 1.5 / (1.5 + 1e-7) - 0.02}, 1e-6));

  // Several steps on the bowl, both against the reference; AdamW's default
  // weight decay is 0.01.
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.05);
  Stepper t(GetParam(), ctx, AdamW(), kBowl);
  const auto want = Reference("adamw", {.lr = 0.05, .wd = 0.01}, kBowl, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Near(t.Step(), want[static_cast<size_t>(i)], 1e-5)) << "step " << i;
}

// weight_decay_min_rank 2: a matrix decays, a vector and a scalar do not
// (decoupled for AdamW, L2 for SGD; zero gradients, so the decay is the
// whole update: w (1 - lr wd) for SGD's first step and AdamW's).
TEST_P(OptimizersTest, WeightDecayMinRankSparesLowerRanks) {
  for (const std::string name : {"adamw", "sgd"}) {
    for (int64_t min_rank : {0, 2}) {
      SCOPED_TRACE(name + " min_rank " + std::to_string(min_rank));
      Context ctx = context::New();
      ctx.SetParam("optimizer", name);
      ctx.SetParam("learning_rate", 0.5);
      ctx.SetParam("weight_decay", 0.2);
      ctx.SetParam("weight_decay_min_rank", min_rank);
      Variable* scalar = ctx.VariableWithValue("s", FromDoubles(shapes::Make(dtypes::Float32), {3}));
      Variable* vector = ctx.VariableWithValue("v", FromDoubles(shapes::Make(dtypes::Float32, 2), {1, -2}));
      Variable* matrix = ctx.VariableWithValue("m", FromDoubles(shapes::Make(dtypes::Float32, 2, 2), {1, 2, 3, 4}));
      auto opt = FromContext(ctx);
      auto exec = context::NewExec(backends::NewWithName(GetParam()), ctx, [&](Context c, Node x) {
        graph::Graph* g = x.Graph();
        // A loss that depends on every variable with a zero gradient.
        Node loss = x;
        for (Variable* v : {scalar, vector, matrix}) loss = loss + graph::ReduceAllSum(v->ValueGraph(g) * 0.0f);
        opt->UpdateGraph(c, loss);
        return loss;
      });
      exec.Call(0.0f);
      const double kept = 1 - 0.5 * 0.2;  // w (1 - lr wd)
      const double low = min_rank == 2 ? 1 : kept;
      EXPECT_TRUE(Near(ToDoubles(scalar->Value()), {3 * low}, 1e-6));
      EXPECT_TRUE(Near(ToDoubles(vector->Value()), {low, -2 * low}, 1e-6));
      EXPECT_TRUE(Near(ToDoubles(matrix->Value()), {kept, 2 * kept, 3 * kept, 4 * kept}, 1e-6));
    }
  }
}

TEST_P(OptimizersTest, L2WeightDecayForSgdRmspropAdagrad) {
  for (const std::string name : {"sgd", "rmsprop", "adagrad"}) {
    SCOPED_TRACE(name);
    Context ctx = context::New();
    ctx.SetParam("optimizer", name);
    ctx.SetParam("learning_rate", 0.05);
    ctx.SetParam("weight_decay", 0.2);
    ctx.SetParam("momentum", 0.5);  // read by sgd and rmsprop
    Stepper t(GetParam(), ctx, FromContext(ctx), kBowl);
    const auto want = Reference(name, {.lr = 0.05, .wd = 0.2, .momentum = 0.5}, kBowl, 3);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(Near(t.Step(), want[static_cast<size_t>(i)], 1e-5)) << "step " << i;
  }
}

// ------------------------------------------------------ RMSProp, Adagrad.

TEST_P(OptimizersTest, RmspropTwoStepsByHand) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.01);
  ctx.SetParam("momentum", 0.0);
  Stepper t(GetParam(), ctx, RMSProp(), kConstGrad);
  // ms1 = 0.1 g^2, step = 0.01 g / sqrt(0.1 g^2 + 1e-7); ms2 = 0.19 g^2.
  auto step = [](double g, double ms) { return 0.01 * g / std::sqrt(ms + 1e-7); };
  const double g0 = 0.5, g1 = -1.5;
  std::vector<double> w1 = {1 - step(g0, 0.1 * g0 * g0), 2 - step(g1, 0.1 * g1 * g1)};
  EXPECT_TRUE(Near(t.Step(), w1, 1e-6));
  EXPECT_TRUE(Near(t.Step(), {w1[0] - step(g0, 0.19 * g0 * g0), w1[1] - step(g1, 0.19 * g1 * g1)}, 1e-6));

  // Default momentum 0.9, on the bowl, against the reference.
  Context bowl = context::New();
  bowl.SetParam("learning_rate", 0.01);
  Stepper b(GetParam(), bowl, RMSProp(), kBowl);
  const auto want = Reference("rmsprop", {.lr = 0.01, .momentum = 0.9}, kBowl, 4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(Near(b.Step(), want[static_cast<size_t>(i)], 1e-5)) << "step " << i;
}

TEST_P(OptimizersTest, AdagradTwoStepsByHand) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.1);
  Stepper t(GetParam(), ctx, Adagrad(), kConstGrad);
  // acc starts at 0.1: acc1 = 0.1 + g^2, acc2 = 0.1 + 2 g^2; w -= 0.1 g / sqrt(acc + 1e-7).
  auto step = [](double g, double acc) { return 0.1 * g / std::sqrt(acc + 1e-7); };
  std::vector<double> w1 = {1 - step(0.5, 0.1 + 0.25), 2 - step(-1.5, 0.1 + 2.25)};
  EXPECT_TRUE(Near(t.Step(), w1, 1e-6));
  EXPECT_TRUE(Near(t.Step(), {w1[0] - step(0.5, 0.1 + 0.5), w1[1] - step(-1.5, 0.1 + 4.5)}, 1e-6));
  EXPECT_TRUE(AllClose(ctx.GetVariableByScopeAndName("/optimizers/adagrad/w/accumulator")->Value(),
                       shapes::Make(dtypes::Float32, 2), {0.6, 4.6}, 1e-6, 0));
}

// ------------------------------------------------ Global step and state.

TEST_P(OptimizersTest, GlobalStepIncrementsAndStateLivesInTheContext) {
  Context ctx = context::New();
  // A scoped variable, so the slot path has several levels.
  Variable* kernel = ctx.In("dense").VariableWithValue("kernel", FromDoubles(shapes::Make(dtypes::Float32, 2), {1, 2}));
  Variable* frozen = ctx.VariableWithValue("frozen", FromDoubles(shapes::Make(dtypes::Float32, 2), {5, 6}));
  frozen->SetTrainable(false);
  Variable* unused = ctx.VariableWithValue("unused", FromDoubles(shapes::Make(dtypes::Float32, 2), {7, 8}));
  auto exec = context::NewExec(backends::NewWithName(GetParam()), ctx, [&](Context c, Node x) {
    Node loss = graph::ReduceAllSum(kernel->ValueGraph(x.Graph()) * frozen->ValueGraph(x.Graph())) * x;
    Adam()->UpdateGraph(c, graph::ReduceAllSum(loss));
    return loss;
  });
  for (int i = 0; i < 3; ++i) exec.Call(1.0f);
  Variable* step = GlobalStep(ctx);
  EXPECT_EQ(step->Value().Value<int64_t>(), 3);
  EXPECT_EQ(step->Shape(), shapes::Make(dtypes::Int64));
  EXPECT_FALSE(step->Trainable());
  for (const char* slot : {"m", "v"}) {
    Variable* s = ctx.GetVariableByScopeAndName(std::string("/optimizers/adam/dense/kernel/") + slot);
    ASSERT_NE(s, nullptr) << slot;
    EXPECT_FALSE(s->Trainable());
    EXPECT_TRUE(s->HasValue());
    EXPECT_EQ(s->Shape(), kernel->Shape());
  }
  // m after 3 steps of the constant gradient [5, 6]: (1 - 0.9^3) g.
  EXPECT_TRUE(AllClose(ctx.GetVariableByScopeAndName("/optimizers/adam/dense/kernel/m")->Value(),
                       shapes::Make(dtypes::Float32, 2), {0.271 * 5, 0.271 * 6}, 1e-5, 0));
  // Untouched: not trainable, or not used by the loss (no state either).
  EXPECT_EQ(ToDoubles(frozen->Value()), (std::vector<double>{5, 6}));
  EXPECT_EQ(ToDoubles(unused->Value()), (std::vector<double>{7, 8}));
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/optimizers/adam/frozen/m"), nullptr);
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/optimizers/adam/unused/m"), nullptr);
  // A new input shape re-traces: the existing state is reused, not re-created.
  exec.Call(std::vector<float>{1.0f, 1.0f});
  EXPECT_EQ(exec.CacheSize(), 2u);
  EXPECT_EQ(step->Value().Value<int64_t>(), 4);
}

TEST(Optimizers, GlobalStepErrors) {
  Context ctx = context::New();
  Variable* step = GlobalStep(ctx.In("model"));  // created at the root from any scope
  EXPECT_EQ(step->ScopeAndName(), "/global_step");
  EXPECT_EQ(step->Value().Value<int64_t>(), 0);
  EXPECT_EQ(GlobalStep(ctx), step);
  Context bad = context::New();
  bad.VariableWithValue("global_step", tensors::FromValue(1.0f));
  KILN_EXPECT_ERROR(GlobalStep(bad), "optimizers::GlobalStep: /global_step is Float32, expected Int64");
}

// ------------------------------------------------------------- Schedules.

// The learning rate at global step `step`, computed by one compiled graph;
// each probe also checks that the host-side LearningRateAt agrees.
class RateProbe {
 public:
  RateProbe(const std::string& backend, Context ctx, dtypes::DType dtype = dtypes::Float32)
      : ctx_(ctx), dtype_(dtype), exec_(context::NewExec(backends::NewWithName(backend), ctx, Fn{dtype})) {}
  double At(int64_t step) {
    GlobalStep(ctx_)->SetValue(tensors::FromValue(step));
    const double rate = ToDoubles(exec_.Call(0.0f))[0];
    // The graph's rounding: 2^-8 relative for BFloat16, 1e-7 for Float32
    // (a few ulps of the rate and of the cosine's argument).
    const double tol = dtype_ == dtypes::BFloat16 ? 4e-3 : dtype_ == dtypes::Float32 ? 1e-6 : 1e-14;
    EXPECT_NEAR(LearningRateAt(ctx_, static_cast<double>(step)), rate, tol * std::max(std::abs(rate), 0.1))
        << "host and graph differ at step " << step;
    return rate;
  }
  size_t CacheSize() const { return exec_.CacheSize(); }

 private:
  struct Fn {
    dtypes::DType dtype;
    Node operator()(Context c, Node x) const { return LearningRate(c, x.Graph(), dtype); }
  };
  Context ctx_;
  dtypes::DType dtype_;
  context::Exec<Fn> exec_;
};

TEST_P(OptimizersTest, ScheduleWarmupCosineExponential) {
  Context cosine = context::New();
  cosine.SetParam("learning_rate", 0.1);
  cosine.SetParam("learning_rate_schedule", std::string("cosine"));
  cosine.SetParam("warmup_steps", int64_t{10});
  cosine.SetParam("decay_steps", int64_t{100});
  cosine.SetParam("min_learning_rate", 0.01);
  RateProbe c(GetParam(), cosine);
  // Warmup: 0.1 * step / 10. Decay counted from step 10: midpoint at step 60
  // gives min + (lr - min) (1 + cos(pi / 2)) / 2 = 0.055; step 35 (quarter).
  EXPECT_NEAR(c.At(0), 0.0, 1e-7);
  EXPECT_NEAR(c.At(5), 0.05, 1e-7);
  EXPECT_NEAR(c.At(10), 0.1, 1e-7);
  EXPECT_NEAR(c.At(35), 0.01 + 0.09 * (1 + std::cos(std::numbers::pi / 4)) / 2, 1e-7);
  EXPECT_NEAR(c.At(60), 0.055, 1e-7);
  EXPECT_NEAR(c.At(110), 0.01, 1e-7);
  EXPECT_NEAR(c.At(100000), 0.01, 1e-7);
  EXPECT_EQ(c.CacheSize(), 1u);  // the rate changes without recompiling
  // Between steps, on the host only: a quarter of the way through warmup
  // step 2 to 3, and the cosine at 37.5 steps past the warmup.
  EXPECT_NEAR(LearningRateAt(cosine, 2.5), 0.025, 1e-15);
  EXPECT_NEAR(LearningRateAt(cosine, 47.5), 0.01 + 0.09 * (1 + std::cos(std::numbers::pi * 0.375)) / 2, 1e-15);

  Context expo = context::New();
  expo.SetParam("learning_rate", 0.1);
  expo.SetParam("learning_rate_schedule", std::string("exponential"));
  expo.SetParam("decay_rate", 0.5);
  expo.SetParam("decay_steps", int64_t{10});
  RateProbe e(GetParam(), expo, dtypes::Float64);
  // 0.1 * 0.5^(step / 10), continuous. Float64 end to end: 1e-15.
  EXPECT_NEAR(e.At(0), 0.1, 1e-15);
  EXPECT_NEAR(e.At(5), 0.1 * std::sqrt(0.5), 1e-15);
  EXPECT_NEAR(e.At(20), 0.025, 1e-15);
  EXPECT_NEAR(e.At(1000), 0.1 * std::pow(0.5, 100), 1e-15);

  Context constant = context::New();  // defaults: constant 0.001 (0.01 when optimizer=sgd)
  RateProbe k(GetParam(), constant);
  EXPECT_NEAR(k.At(12345), 0.001, 1e-9);
  constant.SetParam("optimizer", std::string("sgd"));
  EXPECT_NEAR(RateProbe(GetParam(), constant, dtypes::BFloat16).At(0), 0.01, 1e-4);
}

TEST_P(OptimizersTest, ScheduleLinearAndWarmupStableDecay) {
  Context linear = context::New();
  linear.SetParam("learning_rate", 0.1);
  linear.SetParam("learning_rate_schedule", std::string("linear"));
  linear.SetParam("warmup_steps", int64_t{10});
  linear.SetParam("decay_steps", int64_t{100});
  linear.SetParam("min_learning_rate", 0.02);
  RateProbe l(GetParam(), linear);
  // Warmup to 0.1 at step 10, then 0.1 - 0.08 * (step - 10) / 100 down to 0.02.
  EXPECT_NEAR(l.At(5), 0.05, 1e-7);
  EXPECT_NEAR(l.At(10), 0.1, 1e-7);
  EXPECT_NEAR(l.At(35), 0.08, 1e-7);
  EXPECT_NEAR(l.At(110), 0.02, 1e-7);
  EXPECT_NEAR(l.At(5000), 0.02, 1e-7);

  Context wsd = context::New();
  wsd.SetParam("learning_rate", 0.1);
  wsd.SetParam("learning_rate_schedule", std::string("wsd"));
  wsd.SetParam("decay_steps", int64_t{100});
  wsd.SetParam("cooldown_fraction", 0.25);
  RateProbe w(GetParam(), wsd);
  // 0.1 until step 75, then linear to 0 at step 100.
  EXPECT_NEAR(w.At(0), 0.1, 1e-7);
  EXPECT_NEAR(w.At(75), 0.1, 1e-7);
  EXPECT_NEAR(w.At(80), 0.08, 1e-7);
  EXPECT_NEAR(w.At(95), 0.02, 1e-7);
  EXPECT_NEAR(w.At(100), 0.0, 1e-7);
  EXPECT_NEAR(w.At(1000), 0.0, 1e-7);
  EXPECT_EQ(w.CacheSize(), 1u);
  wsd.SetParam("cooldown_fraction", 1.0);  // the whole run: the linear schedule
  EXPECT_NEAR(RateProbe(GetParam(), wsd).At(40), 0.06, 1e-7);
}

TEST_P(OptimizersTest, ScheduleVariableIsSetByTheHost) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.25);
  ctx.SetParam("learning_rate_schedule", std::string("variable"));
  ctx.SetParam("warmup_steps", int64_t{10});  // not used: the host decides
  RateProbe r(GetParam(), ctx);
  EXPECT_NEAR(r.At(0), 0.25, 1e-7);  // created with learning_rate
  LearningRateVariable(ctx)->SetValue(tensors::FromValue(0.125f));
  EXPECT_NEAR(r.At(1), 0.125, 1e-7);
  LearningRateVariable(ctx)->SetValue(tensors::FromValue(0.0f));
  EXPECT_NEAR(r.At(2), 0.0, 1e-7);
  EXPECT_EQ(r.CacheSize(), 1u);  // no recompilation
  LearningRateVariable(ctx)->SetValue(tensors::FromValue(0.5f));
  EXPECT_EQ(LearningRateAt(ctx, 1e9), 0.5);  // the variable's value, whatever the step

  Context sgd = context::New();  // its default rate, as LearningRate's
  sgd.SetParam("optimizer", std::string("sgd"));
  EXPECT_NEAR(ToDoubles(LearningRateVariable(sgd)->Value())[0], 0.01, 1e-9);
  EXPECT_FALSE(LearningRateVariable(sgd)->Trainable());

  Context bad = context::New();
  bad.In("optimizers").VariableWithValue("learning_rate", tensors::FromValue(1.0));
  KILN_EXPECT_ERROR(LearningRateVariable(bad),
                    "optimizers::LearningRateVariable: /optimizers/learning_rate is Float64, expected Float32");
}

TEST_P(OptimizersTest, UpdatesFollowTheSchedule) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.1);
  ctx.SetParam("warmup_steps", int64_t{2});
  Stepper t(GetParam(), ctx, SGD(), kConstGrad);
  // lr: 0 at step 0, 0.05 at step 1, then 0.1.
  EXPECT_TRUE(Near(t.Step(), {1, 2}, 1e-7));
  EXPECT_TRUE(Near(t.Step(), {1 - 0.025, 2 + 0.075}, 1e-6));
  EXPECT_TRUE(Near(t.Step(), {1 - 0.075, 2 + 0.225}, 1e-6));
  EXPECT_EQ(t.CacheSize(), 1u);
}

TEST(Optimizers, ScheduleErrors) {
  graph::Graph g;
  auto rate = [&](Context ctx, dtypes::DType dtype = dtypes::Float32) { return LearningRate(ctx, &g, dtype); };
  Context ctx = context::New();
  ctx.SetParam("learning_rate_schedule", std::string("step"));
  KILN_EXPECT_ERROR(rate(ctx), "LearningRate: unknown learning_rate_schedule \"step\"; known: constant, cosine, "
                               "exponential, linear, wsd, variable");
  ctx.SetParam("learning_rate_schedule", std::string("wsd"));
  ctx.SetParam("cooldown_fraction", 0.0);
  KILN_EXPECT_ERROR(rate(ctx), "LearningRate: hyperparameter cooldown_fraction=0 must be in (0, 1]");
  ctx.SetParam("cooldown_fraction", 0.2);
  ctx.SetParam("learning_rate_schedule", std::string("cosine"));
  ctx.SetParam("decay_steps", int64_t{0});
  KILN_EXPECT_ERROR(rate(ctx), "LearningRate: hyperparameter decay_steps=0 must be >= 1");
  ctx.SetParam("decay_steps", int64_t{10});
  ctx.SetParam("warmup_steps", int64_t{-1});
  KILN_EXPECT_ERROR(rate(ctx), "LearningRate: hyperparameter warmup_steps=-1 must be >= 0");
  ctx.SetParam("warmup_steps", int64_t{0});
  ctx.SetParam("learning_rate", -0.1);
  KILN_EXPECT_ERROR(rate(ctx), "LearningRate: hyperparameter learning_rate=-0.1 must be in [0, inf)");
  ctx.SetParam("learning_rate", 0.1);
  ctx.SetParam("decay_rate", 0.0);
  KILN_EXPECT_ERROR(rate(ctx), "LearningRate: hyperparameter decay_rate=0 must be in (0, inf)");
  KILN_EXPECT_ERROR(LearningRateAt(ctx, 3), "LearningRate: hyperparameter decay_rate=0 must be in (0, inf)");
  KILN_EXPECT_ERROR(LearningRateAt(context::New(), -1), "LearningRateAt: step must be >= 0, got -1");
  KILN_EXPECT_ERROR(LearningRateAt(context::New(), std::nan("")), "LearningRateAt: step must be >= 0, got nan");
  KILN_EXPECT_ERROR(rate(context::New(), dtypes::Int32), "LearningRate: dtype must be a float, got Int32");
  KILN_EXPECT_ERROR(LearningRate(context::New(), nullptr, dtypes::Float32), "LearningRate: null graph");
}

// -------------------------------------------------------------- Clipping.

TEST_P(OptimizersTest, ClipByGlobalNorm) {
  auto backend = backends::NewWithName(GetParam());
  auto clip = [&](double max_norm) {
    return testing::Run(backend, [&](const std::vector<Node>& p) { return ClipByGlobalNorm(p, max_norm); },
                        {FromDoubles(shapes::Make(dtypes::Float32, 2), {3, 0}),
                         FromDoubles(shapes::Make(dtypes::Float64, 1, 1), {-4})});
  };
  // Global norm sqrt(9 + 16) = 5: max 1 scales by 0.2; max 10 leaves them.
  auto clipped = clip(1);
  EXPECT_TRUE(AllClose(clipped[0], shapes::Make(dtypes::Float32, 2), {0.6, 0}, 1e-6, 0));
  EXPECT_TRUE(AllClose(clipped[1], shapes::Make(dtypes::Float64, 1, 1), {-0.8}, 1e-12, 0));
  auto same = clip(10);
  EXPECT_TRUE(AllClose(same[0], shapes::Make(dtypes::Float32, 2), {3, 0}, 0, 0));
  EXPECT_TRUE(AllClose(same[1], shapes::Make(dtypes::Float64, 1, 1), {-4}, 0, 0));
  EXPECT_TRUE(ClipByGlobalNorm({}, 1).empty());

  // In an optimizer: SGD, lr 1, gradient [0.5, -1.5] (norm ~1.581) clipped to 1.
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 1.0);
  ctx.SetParam("clip_global_norm", 1.0);
  Stepper t(GetParam(), ctx, SGD(), kConstGrad);
  const double norm = std::sqrt(0.25 + 2.25);
  EXPECT_TRUE(Near(t.Step(), {1 - 0.5 / norm, 2 + 1.5 / norm}, 1e-6));
}

TEST(Optimizers, ClipByGlobalNormErrors) {
  graph::Graph g;
  Node x = graph::Parameter(&g, "x", shapes::Make(dtypes::Float32, 2));
  Node i = graph::Parameter(&g, "i", shapes::Make(dtypes::Int32, 2));
  KILN_EXPECT_ERROR(ClipByGlobalNorm({x}, 0), "ClipByGlobalNorm: max_norm must be positive, got 0");
  KILN_EXPECT_ERROR(ClipByGlobalNorm({x}, std::nan("")), "ClipByGlobalNorm: max_norm must be positive, got nan");
  KILN_EXPECT_ERROR(ClipByGlobalNorm({x, i}, 1), "ClipByGlobalNorm: gradient #1 is Int32[2], not a float");
  KILN_EXPECT_ERROR(ClipByGlobalNorm({x, Node()}, 1), "ClipByGlobalNorm: gradient #1 is an empty Node, not a float");
}

// ------------------------------------------------------------------ Muon.

using Matrix = std::vector<std::vector<double>>;

Matrix Multiply(const Matrix& a, const Matrix& b) {
  Matrix out(a.size(), std::vector<double>(b[0].size(), 0.0));
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t k = 0; k < b.size(); ++k) {
      for (size_t j = 0; j < b[0].size(); ++j) out[i][j] += a[i][k] * b[k][j];
    }
  }
  return out;
}

Matrix Transposed(const Matrix& a) {
  Matrix out(a[0].size(), std::vector<double>(a.size()));
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < a[0].size(); ++j) out[j][i] = a[i][j];
  }
  return out;
}

// The reference's quintic Newton-Schulz iteration, in double, written out.
Matrix NewtonSchulz5(Matrix x) {
  const bool tall = x.size() > x[0].size();
  if (tall) x = Transposed(x);
  double norm = 0;
  for (const auto& row : x) {
    for (double v : row) norm += v * v;
  }
  norm = std::sqrt(norm) + 1e-7;
  for (auto& row : x) {
    for (double& v : row) v /= norm;
  }
  for (int step = 0; step < 5; ++step) {
    const Matrix s = Multiply(x, Transposed(x));
    const Matrix s2 = Multiply(s, s);
    Matrix poly = s;
    for (size_t i = 0; i < s.size(); ++i) {
      for (size_t j = 0; j < s.size(); ++j) poly[i][j] = -4.7750 * s[i][j] + 2.0315 * s2[i][j];
    }
    const Matrix px = Multiply(poly, x);
    for (size_t i = 0; i < x.size(); ++i) {
      for (size_t j = 0; j < x[0].size(); ++j) x[i][j] = 3.4445 * x[i][j] + px[i][j];
    }
  }
  return tall ? Transposed(x) : x;
}

// Steps of an optimizer on the matrix variable `name` with the loss
// sum(c * w + w^2 / 2): the gradient c + w changes from step to step.
std::vector<std::vector<double>> MatrixSteps(const std::string& backend, Context ctx, std::shared_ptr<Optimizer> opt,
                                             const std::string& name, const Matrix& w0, const Matrix& c, int steps) {
  const auto rows = static_cast<int64_t>(w0.size()), cols = static_cast<int64_t>(w0[0].size());
  const shapes::Shape shape = shapes::Make(dtypes::Float32, rows, cols);
  std::vector<double> w_flat, c_flat;
  for (size_t i = 0; i < w0.size(); ++i) {
    w_flat.insert(w_flat.end(), w0[i].begin(), w0[i].end());
    c_flat.insert(c_flat.end(), c[i].begin(), c[i].end());
  }
  Variable* var = ctx.In("layer").VariableWithValue(name, FromDoubles(shape, w_flat));
  auto exec = context::NewExec(testing::NewTestBackend(backend), ctx, [&](Context cc, Node x) {
    Node w = var->ValueGraph(x.Graph());
    Node c_node = graph::Const(x.Graph(), FromDoubles(shape, c_flat));
    Node loss = graph::ReduceAllSum(w * c_node + graph::Square(w) * 0.5);
    opt->UpdateGraph(cc, loss);
    return loss;
  });
  std::vector<std::vector<double>> out;
  for (int i = 0; i < steps; ++i) {
    exec.Call(0.0f);
    out.push_back(ToDoubles(var->Value()));
  }
  return out;
}

TEST_P(OptimizersTest, MuonOrthogonalizesTheMomentumOfAMatrix) {
  const Matrix wide_c = {{0.5, -1.0, 2.0, 0.25, -0.75}, {1.5, 0.5, -0.5, 1.0, 0.0}, {-1.0, 2.0, 0.5, -0.25, 1.0}};
  struct Config {
    bool nesterov;
    std::string adjust;
  };
  for (const Config& config : {Config{true, "match_rms_adamw"}, Config{false, "match_rms_adamw"},
                               Config{true, "original"}}) {
    for (bool tall : {false, true}) {
      SCOPED_TRACE(::testing::Message() << (tall ? "tall [5, 3]" : "wide [3, 5]") << " nesterov " << config.nesterov
                                        << " " << config.adjust);
      const Matrix c = tall ? Transposed(wide_c) : wide_c;
      const size_t rows = c.size(), cols = c[0].size();
      Matrix w(rows, std::vector<double>(cols));
      for (size_t i = 0; i < rows; ++i) {
        for (size_t j = 0; j < cols; ++j) w[i][j] = 0.3 * static_cast<double>(i) - 0.4 * static_cast<double>(j);
      }
      Context ctx = context::New();
      ctx.SetParam("learning_rate", 0.05);
      ctx.SetParam("muon_nesterov", config.nesterov);
      ctx.SetParam("muon_adjust_lr", config.adjust);
      const auto got = MatrixSteps(GetParam(), ctx, Muon(), "weights", w, c, 3);
      // The reference: g = c + w; buf = 0.95 buf + 0.05 g; update = 0.05 g +
      // 0.95 buf (Nesterov) or buf; w -= lr scale NS5(update) + lr 0.1 w.
      // "original" for a Dense [in, out] weight: sqrt(max(1, out / in)).
      const double lr = 0.05;
      const double scale = config.adjust == "original"
                               ? std::sqrt(std::max(1.0, static_cast<double>(cols) / static_cast<double>(rows)))
                               : 0.2 * std::sqrt(5.0);
      Matrix buf(rows, std::vector<double>(cols, 0.0));
      for (int step = 0; step < 3; ++step) {
        Matrix update = buf;
        for (size_t i = 0; i < rows; ++i) {
          for (size_t j = 0; j < cols; ++j) {
            const double g = c[i][j] + w[i][j];
            buf[i][j] = 0.95 * buf[i][j] + 0.05 * g;
            update[i][j] = config.nesterov ? 0.05 * g + 0.95 * buf[i][j] : buf[i][j];
          }
        }
        const Matrix o = NewtonSchulz5(update);
        std::vector<double> want;
        for (size_t i = 0; i < rows; ++i) {
          for (size_t j = 0; j < cols; ++j) {
            w[i][j] = w[i][j] - lr * scale * o[i][j] - lr * 0.1 * w[i][j];
            want.push_back(w[i][j]);
          }
        }
        EXPECT_TRUE(Near(got[static_cast<size_t>(step)], want, 1e-5)) << "step " << step;
      }
    }
  }
}

// Several matrices in one model: those of one shape up to transposition
// are orthogonalized as one batch, with the result of each on its own.
TEST_P(OptimizersTest, MuonBatchesSameShapedMatricesWithTheResultsOfEachAlone) {
  struct Case {
    std::string name;
    Matrix w, c;
  };
  auto filled = [](size_t rows, size_t cols, double a, double b) {
    Matrix m(rows, std::vector<double>(cols));
    for (size_t i = 0; i < rows; ++i) {
      for (size_t j = 0; j < cols; ++j) m[i][j] = a * static_cast<double>(i) + b * static_cast<double>(j) - 0.3;
    }
    return m;
  };
  const std::vector<Case> cases = {{"first", filled(3, 5, 0.3, -0.4), filled(3, 5, -0.2, 0.5)},
                                   {"second", filled(3, 5, -0.1, 0.2), filled(3, 5, 0.7, -0.3)},
                                   {"tall", filled(5, 3, 0.25, 0.1), filled(5, 3, -0.4, 0.6)},
                                   {"square", filled(4, 4, 0.2, -0.2), filled(4, 4, 0.3, 0.1)}};
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.05);
  std::vector<Variable*> vars;
  std::vector<tensors::Tensor> cs;
  for (const Case& k : cases) {
    const shapes::Shape shape = shapes::Make(dtypes::Float32, static_cast<int64_t>(k.w.size()),
                                             static_cast<int64_t>(k.w[0].size()));
    std::vector<double> w_flat, c_flat;
    for (size_t i = 0; i < k.w.size(); ++i) {
      w_flat.insert(w_flat.end(), k.w[i].begin(), k.w[i].end());
      c_flat.insert(c_flat.end(), k.c[i].begin(), k.c[i].end());
    }
    vars.push_back(ctx.In("layer").VariableWithValue(k.name, FromDoubles(shape, w_flat)));
    cs.push_back(FromDoubles(shape, c_flat));
  }
  auto exec = context::NewExec(testing::NewTestBackend(GetParam()), ctx, [&](Context cc, Node x) {
    Node loss = graph::Scalar(x.Graph(), dtypes::Float32, 0.0);
    for (size_t i = 0; i < vars.size(); ++i) {
      Node w = vars[i]->ValueGraph(x.Graph());
      loss = loss + graph::ReduceAllSum(w * graph::Const(x.Graph(), cs[i]) + graph::Square(w) * 0.5);
    }
    Muon()->UpdateGraph(cc, loss);
    return loss;
  });
  std::vector<std::vector<std::vector<double>>> together(cases.size());
  for (int step = 0; step < 3; ++step) {
    exec.Call(0.0f);
    for (size_t i = 0; i < vars.size(); ++i) together[i].push_back(ToDoubles(vars[i]->Value()));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    Context alone = context::New();
    alone.SetParam("learning_rate", 0.05);
    const auto want = MatrixSteps(GetParam(), alone, Muon(), cases[i].name, cases[i].w, cases[i].c, 3);
    // Float32 products batched or not round differently in the last bits.
    for (size_t step = 0; step < 3; ++step) EXPECT_TRUE(Near(together[i][step], want[step], 1e-5)) << "step " << step;
  }
}

TEST_P(OptimizersTest, MuonLeavesVectorsEmbeddingsAndHeadsToAdamW) {
  // A vector: AdamW with Muon's default weight decay 0.1.
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.05);
  Stepper t(GetParam(), ctx, Muon(), kBowl);
  const auto want = Reference("adamw", {.lr = 0.05, .wd = 0.1}, kBowl, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Near(t.Step(), want[static_cast<size_t>(i)], 1e-5)) << "step " << i;
  EXPECT_NE(ctx.GetVariableByScopeAndName("/optimizers/muon/w/m"), nullptr);

  // Matrices whose names contain an excluded part: AdamW's first step is
  // -lr sign(g) (then the decay), whatever the matrix.
  const Matrix w = {{1, 2}, {3, 4}}, c = {{0.5, -1}, {2, -0.25}};
  for (const std::string name : {"embeddings", "positions", "logits_weights", "custom"}) {
    SCOPED_TRACE(name);
    Context m = context::New();
    m.SetParam("learning_rate", 0.1);
    m.SetParam("weight_decay", 0.0);
    if (name == "custom") m.SetParam("muon_exclude", std::string("cust,other"));
    const auto got = MatrixSteps(GetParam(), m, Muon(), name, w, c, 1);  // the gradient c + w is positive
    EXPECT_TRUE(Near(got[0], {1 - 0.1, 2 - 0.1, 3 - 0.1, 4 - 0.1}, 1e-6));
    EXPECT_NE(m.GetVariableByScopeAndName("/optimizers/muon/layer/" + name + "/v"), nullptr);
  }
}

TEST_P(OptimizersTest, MuonMinimizesAMatrixLeastSquares) {
  // loss = 0.5 |w - target|^2 on a 4x6 matrix, from zero, cosine-annealed.
  const shapes::Shape shape = shapes::Make(dtypes::Float32, 4, 6);
  std::vector<double> target;
  for (int i = 0; i < 24; ++i) target.push_back(std::sin(1.7 * i) * 0.8);
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.05);
  ctx.SetParam("weight_decay", 0.0);
  ctx.SetParam("learning_rate_schedule", std::string("cosine"));
  ctx.SetParam("decay_steps", int64_t{400});
  Variable* var = ctx.In("dense").VariableWithValue("weights", FromDoubles(shape, std::vector<double>(24, 0.0)));
  auto exec = context::NewExec(testing::NewTestBackend(GetParam()), ctx, [&](Context cc, Node x) {
    Node diff = var->ValueGraph(x.Graph()) - graph::Const(x.Graph(), FromDoubles(shape, target));
    Node loss = graph::ReduceAllSum(graph::Square(diff)) * 0.5;
    Muon()->UpdateGraph(cc, loss);
    return loss;
  });
  for (int i = 0; i < 400; ++i) exec.Call(0.0f);
  EXPECT_TRUE(Near(ToDoubles(var->Value()), target, 2e-2));
}

// ------------------------------------------------------ FromContext, errors.

TEST(Optimizers, FromContextNames) {
  Context ctx = context::New();
  EXPECT_EQ(FromContext(ctx)->Name(), "adam");
  for (const std::string name : {"sgd", "adam", "adamw", "muon", "rmsprop", "adagrad"}) {
    ctx.SetParam("optimizer", name);
    EXPECT_EQ(FromContext(ctx)->Name(), name);
  }
  ctx.SetParam("optimizer", std::string("lion"));
  KILN_EXPECT_ERROR(FromContext(ctx), "optimizers::FromContext: unknown optimizer \"lion\" (hyperparameter \"optimizer\"); "
                                      "known: adagrad, adam, adamw, muon, rmsprop, sgd");
  EXPECT_EQ(SGD()->Name(), "sgd");
  EXPECT_EQ(AdamW()->Name(), "adamw");
}

TEST(Optimizers, HyperparameterAndLossErrors) {
  auto step_error = [](std::shared_ptr<Optimizer> opt, const std::string& key, context::Param value) {
    Context ctx = context::New();
    ctx.SetParam(key, value);
    Stepper t("cpu", ctx, opt, kConstGrad);
    t.Step();
  };
  KILN_EXPECT_ERROR(step_error(Adam(), "adam_beta1", 1.5), "Optimizer adam: hyperparameter adam_beta1=1.5 must be in [0, 1)");
  KILN_EXPECT_ERROR(step_error(AdamW(), "adam_beta2", 1.0), "Optimizer adamw: hyperparameter adam_beta2=1 must be in [0, 1)");
  KILN_EXPECT_ERROR(step_error(Adam(), "adam_epsilon", -1.0), "Optimizer adam: hyperparameter adam_epsilon=-1 must be in [0, inf)");
  KILN_EXPECT_ERROR(step_error(SGD(), "momentum", 2.0), "Optimizer sgd: hyperparameter momentum=2 must be in [0, 1]");
  KILN_EXPECT_ERROR(step_error(SGD(), "nesterov", true), "Optimizer sgd: nesterov=true needs a momentum > 0");
  KILN_EXPECT_ERROR(step_error(RMSProp(), "rmsprop_rho", -0.5), "Optimizer rmsprop: hyperparameter rmsprop_rho=-0.5 must be in [0, 1)");
  KILN_EXPECT_ERROR(step_error(Adagrad(), "adagrad_initial", -0.1), "Optimizer adagrad: hyperparameter adagrad_initial=-0.1 must be in [0, inf)");
  KILN_EXPECT_ERROR(step_error(SGD(), "weight_decay", -1.0), "Optimizer sgd: hyperparameter weight_decay=-1 must be in [0, inf)");
  KILN_EXPECT_ERROR(step_error(SGD(), "weight_decay_min_rank", int64_t{-1}),
                    "Optimizer sgd: hyperparameter weight_decay_min_rank=-1 must be >= 0");
  KILN_EXPECT_ERROR(step_error(SGD(), "clip_global_norm", -1.0), "Optimizer sgd: hyperparameter clip_global_norm=-1 must be in [0, inf)");
  KILN_EXPECT_ERROR(step_error(SGD(), "momentum", std::string("high")), "momentum");
  KILN_EXPECT_ERROR(step_error(Muon(), "muon_adjust_lr", std::string("spectral")),
                    "Optimizer muon: hyperparameter muon_adjust_lr=\"spectral\" must be \"match_rms_adamw\" or \"original\"");
  KILN_EXPECT_ERROR(step_error(Muon(), "muon_momentum", 1.0), "Optimizer muon: hyperparameter muon_momentum=1 must be in [0, 1)");
  KILN_EXPECT_ERROR(step_error(Muon(), "muon_ns_steps", int64_t{0}),
                    "Optimizer muon: hyperparameter muon_ns_steps=0 must be in [1, 100]");

  Context ctx = context::New();
  Variable* w = ctx.VariableWithValue("w", FromDoubles(shapes::Make(dtypes::Float32, 2), {1, 2}));
  auto exec = context::NewExec(backends::NewWithName("cpu"), ctx, [&](Context c, Node x) {
    Node not_scalar = w->ValueGraph(x.Graph()) * x;
    SGD()->UpdateGraph(c, not_scalar);
    return not_scalar;
  });
  KILN_EXPECT_ERROR(exec.Call(1.0f), "Optimizer sgd: the loss must be a float scalar, got Float32[2]");
  KILN_EXPECT_ERROR(SGD()->UpdateGraph(ctx, Node()), "Optimizer sgd: UpdateGraph with an empty loss Node");
}

// ------------------------------------------------- Gradient accumulation.

// The rows [begin, end) of a row-major Float64 matrix of `cols` columns.
tensors::Tensor Rows(const std::vector<double>& v, int64_t cols, int64_t begin, int64_t end) {
  std::vector<double> rows(v.begin() + begin * cols, v.begin() + end * cols);
  return FromDoubles(cols == 1 ? shapes::Make(dtypes::Float64, end - begin) : shapes::Make(dtypes::Float64, end - begin, cols),
                     rows);
}

// Least squares, loss = mean((x w - y)^2), one optimizer call per batch;
// returns the context afterwards.
Context TrainLeastSquares(const std::string& backend, std::shared_ptr<Optimizer> (*make)(), int64_t accumulate,
                          const std::vector<std::pair<tensors::Tensor, tensors::Tensor>>& batches) {
  Context ctx = context::New();
  ctx.SetParam("gradient_accumulation_steps", accumulate);
  ctx.SetParam("clip_global_norm", 0.5);  // applies to the mean gradient
  ctx.SetParam("learning_rate", 0.1);
  ctx.SetParam("warmup_steps", int64_t{3});  // the schedule follows the updates
  ctx.SetParam("momentum", 0.5);             // SGD's and RMSProp's
  Variable* w = ctx.VariableWithValue("w", FromDoubles(shapes::Make(dtypes::Float64, 3), {0.5, -1, 2}));
  auto exec = context::NewExec(backends::NewWithName(backend), ctx, [&](Context c, Node x, Node y) {
    Node loss = graph::ReduceAllMean(graph::Square(graph::MatMul(x, w->ValueGraph(x.Graph())) - y));
    make()->UpdateGraph(c, loss);
    return loss;
  });
  for (const auto& [x, y] : batches) exec.Call(x, y);
  return ctx;
}

TEST_P(OptimizersTest, GradientAccumulationTrainsLikeOneLargeBatch) {
  testing::Rng rng(5);
  const std::vector<double> x = ToDoubles(testing::Random(shapes::Make(dtypes::Float64, 16, 3), rng, -1, 1));
  const std::vector<double> y = ToDoubles(testing::Random(shapes::Make(dtypes::Float64, 16), rng, -1, 1));
  for (auto make : {&SGD, &Adam, &AdamW, &RMSProp, &Adagrad}) {
    SCOPED_TRACE(make()->Name());
    // Two updates on batches of 8 against four calls on micro-batches of 4.
    const Context whole = TrainLeastSquares(GetParam(), make, 1, {{Rows(x, 3, 0, 8), Rows(y, 1, 0, 8)},
                                                                  {Rows(x, 3, 8, 16), Rows(y, 1, 8, 16)}});
    std::vector<std::pair<tensors::Tensor, tensors::Tensor>> micro;
    for (int64_t b = 0; b < 16; b += 4) micro.push_back({Rows(x, 3, b, b + 4), Rows(y, 1, b, b + 4)});
    const Context accumulated = TrainLeastSquares(GetParam(), make, 2, micro);
    EXPECT_TRUE(AllClose(accumulated.GetVariableByScopeAndName("/w")->Value(),
                         whole.GetVariableByScopeAndName("/w")->Value(), 1e-12, 1e-14));
    EXPECT_EQ(GlobalStep(accumulated)->Value().Value<int64_t>(), 2);
    // The accumulators are reset after each update.
    EXPECT_EQ(ToDoubles(accumulated.GetVariableByScopeAndName("/optimizers/accumulation/w/gradient_sum")->Value()),
              (std::vector<double>{0, 0, 0}));
    // After one micro-batch of two: nothing updated yet, its gradient held.
    const Context half = TrainLeastSquares(GetParam(), make, 2, {micro[0]});
    EXPECT_EQ(ToDoubles(half.GetVariableByScopeAndName("/w")->Value()), (std::vector<double>{0.5, -1, 2}));
    EXPECT_EQ(GlobalStep(half)->Value().Value<int64_t>(), 0);
    EXPECT_NE(ToDoubles(half.GetVariableByScopeAndName("/optimizers/accumulation/w/gradient_sum")->Value()),
              (std::vector<double>{0, 0, 0}));
    EXPECT_EQ(half.GetVariableByScopeAndName("/optimizers/accumulation/micro_step")->Value().Value<int64_t>(), 1);
    EXPECT_EQ(accumulated.GetVariableByScopeAndName("/optimizers/accumulation/micro_step")->Value().Value<int64_t>(), 0);
  }
}

TEST(Optimizers, GradientAccumulationStepsMustBePositive) {
  Context ctx = context::New();
  ctx.SetParam("gradient_accumulation_steps", int64_t{0});
  Stepper t("cpu", ctx, SGD(), kConstGrad);
  KILN_EXPECT_ERROR(t.Step(), "Optimizer sgd: hyperparameter gradient_accumulation_steps=0 must be >= 1");
}

// ------------------------------------------------------------ Convergence.

TEST_P(OptimizersTest, EveryOptimizerMinimizesAQuadratic) {
  // Minimum of kBowl at [0.5, -0.5, -0.5]; the cosine schedule anneals the
  // rate to 0 so the adaptive methods settle instead of hovering.
  struct Case {
    std::string name;
    double lr;
  };
  const int kSteps = 300;
  for (const Case& c : {Case{"sgd", 0.1}, Case{"adam", 0.1}, Case{"adamw", 0.1}, Case{"rmsprop", 0.05},
                        Case{"adagrad", 0.5}}) {
    SCOPED_TRACE(c.name);
    Context ctx = context::New();
    ctx.SetParam("optimizer", c.name);
    ctx.SetParam("learning_rate", c.lr);
    ctx.SetParam("learning_rate_schedule", std::string("cosine"));
    ctx.SetParam("decay_steps", int64_t{kSteps});
    ctx.SetParam("momentum", 0.5);
    ctx.SetParam("weight_decay", 0.0);  // AdamW would pull the optimum toward 0
    Stepper t(GetParam(), ctx, FromContext(ctx), kBowl);
    std::vector<double> w;
    for (int i = 0; i < kSteps; ++i) w = t.Step();
    EXPECT_TRUE(Near(w, {0.5, -0.5, -0.5}, 1e-3));
  }
}

// A complex variable is updated as its real and imaginary parts, each a
// coordinate with its own state (PyTorch's view_as_real): the same steps as
// the real optimizer on the interleaved parts.
TEST(Optimizers, ComplexVariablesStepAsPairsOfReals) {
  const Quadratic q{{1, -2, 3, 0.5, -1, 2}, {1, 2, 0.5, 1.5, 3, 1}, {-0.5, 1, 0.25, -2, 1, 0.5}};
  struct Case {
    std::string name;
    Hyper h;
    std::string reference;  // the real algorithm it must match
  };
  // Muon sends complex variables (coordinates, not matrices) to AdamW.
  for (const Case& c : {Case{"adam", {.lr = 0.05}, "adam"}, Case{"sgd", {.lr = 0.1, .momentum = 0.5}, "sgd"},
                        Case{"rmsprop", {.lr = 0.05}, "rmsprop"}, Case{"adamw", {.lr = 0.05, .wd = 0.1}, "adamw"},
                        Case{"adagrad", {.lr = 0.5}, "adagrad"}, Case{"muon", {.lr = 0.05, .wd = 0.1}, "adamw"}}) {
    SCOPED_TRACE(c.name);
    Context ctx = context::New();
    ctx.SetParam("optimizer", c.name);
    ctx.SetParam("learning_rate", c.h.lr);
    ctx.SetParam("momentum", c.h.momentum);
    ctx.SetParam("weight_decay", c.h.wd);
    Variable* z = ctx.VariableWithValue("w", FromDoubles(shapes::Make(dtypes::Complex128, 3), q.w0));
    EXPECT_TRUE(z->Trainable());
    auto opt = FromContext(ctx);
    auto exec = context::NewExec(backends::New(), ctx, [&](Context cc, Node x) {
      Node w = z->ValueGraph(x.Graph());
      Node parts = graph::Reshape(graph::Stack({graph::Real(w), graph::Imag(w)}, -1), {6});  // x0, y0, x1, ...
      Node loss = QuadraticLoss(parts, q);
      opt->UpdateGraph(cc, loss);
      return loss;
    });
    const auto want = Reference(c.reference, c.h, q, 4);
    for (int i = 0; i < 4; ++i) {
      exec.Call(0.0f);
      EXPECT_TRUE(Near(ToDoubles(z->Value()), want[static_cast<size_t>(i)], 1e-12)) << "step " << i;
    }
    EXPECT_EQ(z->DType(), dtypes::Complex128);
    if (c.name == "adam") {
      EXPECT_EQ(ctx.GetVariableByScopeAndName("/optimizers/adam/w/m")->Shape(), shapes::Make(dtypes::Float64, 3, 2));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, OptimizersTest, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

}  // namespace
}  // namespace kiln::ml::optimizers
