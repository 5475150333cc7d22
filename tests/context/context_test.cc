// Copyright 2026 The Kiln Authors.
// Context: scopes, reuse, variables, hyperparameters, context-aware
// execution with in-place updates, initializers and random state.
#include "kiln/context/context.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>

#include "kiln/context/exec.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using context::Variable;
using graph::Node;
namespace initializers = context::initializers;

// Executables, random numbers and initializers on each test backend
// (testing::BackendNames(): the CUDA emulator's ctest runs them on CUDA).
class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return testing::NewTestBackend(GetParam()); }
};
class ContextExec : public BackendTest {};
class ContextRandom : public BackendTest {};
class InitializersOnBackends : public BackendTest {};

TEST(Context, ScopesAndNames) {
  Context ctx = context::New();
  EXPECT_EQ(ctx.Scope(), "/");
  Context layer = ctx.In("layer1").In("dense");
  EXPECT_EQ(layer.Scope(), "/layer1/dense");
  Variable* w = layer.VariableWithShape("weights", shapes::Make(dtypes::Float32, 3, 2));
  EXPECT_EQ(w->ScopeAndName(), "/layer1/dense/weights");
  EXPECT_EQ(w->Scope(), "/layer1/dense");
  EXPECT_EQ(w->Name(), "weights");
  EXPECT_TRUE(w->Trainable());
  Variable* steps = ctx.VariableWithShape("steps", shapes::Make(dtypes::Int64));
  EXPECT_FALSE(steps->Trainable());
  EXPECT_EQ(ctx.Variables().size(), 2u);
  EXPECT_EQ(ctx.In("layer1").VariablesInScope().size(), 1u);
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/layer1/dense/weights"), w);
  EXPECT_EQ(layer.GetVariable("weights"), w);
  EXPECT_EQ(ctx.GetVariable("nope"), nullptr);
  KILN_EXPECT_ERROR(ctx.In("a/b"), "Context::In: invalid scope name \"a/b\"");
  KILN_EXPECT_ERROR(ctx.VariableWithShape("", shapes::Make(dtypes::Float32)), "invalid variable name \"\"");
}

TEST(Context, ReuseCatchesAccidentalSharing) {
  Context ctx = context::New();
  Variable* w = ctx.In("l").VariableWithShape("w", shapes::Make(dtypes::Float32, 2));
  KILN_EXPECT_ERROR(ctx.In("l").VariableWithShape("w", shapes::Make(dtypes::Float32, 2)),
                    "Context: variable /l/w already exists; use ctx.Reuse() to share it");
  EXPECT_EQ(ctx.In("l").Reuse().VariableWithShape("w", shapes::Make(dtypes::Float32, 2)), w);
  KILN_EXPECT_ERROR(ctx.In("l").Reuse().VariableWithShape("w", shapes::Make(dtypes::Float32, 3)),
                    "Context: variable /l/w exists with shape Float32[2], requested Float32[3]");
  KILN_EXPECT_ERROR(ctx.Reuse().VariableWithShape("missing", shapes::Make(dtypes::Float32)),
                    "Context: variable /missing does not exist (the context is in reuse mode)");
}

TEST(Context, ValuesAndErrors) {
  Context ctx = context::New();
  Variable* v = ctx.VariableWithValue("v", tensors::FromValue(std::vector<float>{1, 2}));
  EXPECT_EQ(v->Value().Value<std::vector<float>>(), (std::vector<float>{1, 2}));
  KILN_EXPECT_ERROR(v->SetValue(tensors::FromValue(1.0f)), "Variable /v: SetValue with Float32, the variable is Float32[2]");
  Variable* u = ctx.VariableWithShape("u", shapes::Make(dtypes::Float32));
  KILN_EXPECT_ERROR(u->Value(), "Variable /u has no value yet");
  auto g = graph::NewGraph();
  KILN_EXPECT_ERROR(v->ValueGraph(g.get()), "Variable /v: ValueGraph must be called while context::NewExec traces this graph");
}

TEST(Context, ParametersInheritAndOverride) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.001);
  ctx.SetParam("batch_size", int64_t{32});
  ctx.SetParam("optimizer", std::string("adam"));
  ctx.SetParam("use_bias", true);
  ctx.SetParam("hidden", std::vector<int64_t>{128, 64});
  Context layer = ctx.In("layer1");
  layer.SetParam("dropout", 0.0);
  EXPECT_EQ(layer.GetParam<double>("learning_rate"), 0.001);  // inherited
  layer.SetParam("learning_rate", 0.01);                      // overridden in the child
  EXPECT_EQ(layer.GetParam<double>("learning_rate"), 0.01);
  EXPECT_EQ(ctx.GetParam<double>("learning_rate"), 0.001);
  EXPECT_EQ(ctx.GetParam<int64_t>("batch_size"), 32);
  EXPECT_EQ(ctx.GetParam<double>("batch_size"), 32.0);  // ints read as doubles
  EXPECT_EQ(ctx.GetParam<std::string>("optimizer"), "adam");
  EXPECT_TRUE(ctx.GetParam<bool>("use_bias"));
  EXPECT_EQ(ctx.GetParam<std::vector<int64_t>>("hidden"), (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(ctx.GetParamOr<double>("missing", 7.0), 7.0);
  KILN_EXPECT_ERROR(ctx.GetParam<double>("missing"), "Context::GetParam: no parameter \"missing\" in scope \"/\"");
  KILN_EXPECT_ERROR(ctx.GetParam<int64_t>("optimizer"), "parameter \"optimizer\" is a string (adam), not a int");
}

TEST(Context, ParametersFromAString) {
  Context ctx = context::New();
  ctx.SetParam("learning_rate", 0.001);
  ctx.SetParam("batch_size", int64_t{32});
  ctx.SetParam("optimizer", std::string("adam"));
  ctx.SetParam("hidden", std::vector<int64_t>{128});
  ctx.In("layer1").SetParam("dropout", 0.0);
  ctx.SetParams("learning_rate=0.01;batch_size=64; /layer1/dropout=0.1;optimizer=sgd;hidden=256,128");
  EXPECT_EQ(ctx.GetParam<double>("learning_rate"), 0.01);
  EXPECT_EQ(ctx.GetParam<int64_t>("batch_size"), 64);
  EXPECT_EQ(ctx.In("layer1").GetParam<double>("dropout"), 0.1);
  EXPECT_EQ(ctx.GetParam<std::string>("optimizer"), "sgd");
  EXPECT_EQ(ctx.GetParam<std::vector<int64_t>>("hidden"), (std::vector<int64_t>{256, 128}));
  KILN_EXPECT_ERROR(ctx.SetParams("learnig_rate=0.1"), "Context::SetParams: unknown parameter \"learnig_rate\"");
  KILN_EXPECT_ERROR(ctx.SetParams("batch_size=6.5"), "cannot parse \"6.5\" as a int for parameter \"batch_size\"");
  KILN_EXPECT_ERROR(ctx.SetParams("batch_size"), "\"batch_size\" is not of the form key=value");
  EXPECT_EQ(ctx.GetParam<int64_t>("batch_size"), 64);  // a failed setting leaves the value
}

TEST_P(ContextExec, CounterIncrementsInPlace) {
  Context ctx = context::New();
  Variable* counter = ctx.VariableWithValue("counter", tensors::FromValue(int64_t{0}));
  auto backend = Backend();
  auto step = context::NewExec(backend, ctx, [&](Context c, Node x) {
    Variable* v = c.Reuse().VariableWithShape("counter", shapes::Make(dtypes::Int64));
    Node current = v->ValueGraph(x.Graph());
    Node next = current + graph::ScalarLike(current, 1);
    v->SetValueGraph(next);
    return x * 2.0f;
  });
  const void* first = nullptr;
  for (int i = 0; i < 100; ++i) {
    tensors::Tensor out = step.Call(tensors::FromValue(float(i)));
    EXPECT_EQ(out.Value<float>(), 2.0f * i);
    const void* data = testing::BufferAddress(counter->Value(), *backend);
    if (i == 1) first = data;
    if (i > 1) {
      ASSERT_EQ(data, first) << "the counter's buffer was copied at call " << i;
    }
  }
  EXPECT_EQ(counter->Value().Value<int64_t>(), 100);
  EXPECT_EQ(step.CacheSize(), 1u);
}

TEST_P(ContextExec, VariablesCreatedWhileTracingAreInitialized) {
  Context ctx = context::New();
  auto dense = context::NewExec(Backend(), ctx, [](Context c, Node x) {
    Variable* w = c.In("dense").WithInitializer(initializers::Ones()).VariableWithShape("w", shapes::Make(dtypes::Float32, 3, 2));
    Variable* b = c.In("dense").WithInitializer(initializers::Constant(0.5)).VariableWithShape("b", shapes::Make(dtypes::Float32, 2));
    return graph::MatMul(x, w->ValueGraph(x.Graph())) + b->ValueGraph(x.Graph());
  });
  tensors::Tensor y = dense.Call(std::vector<std::vector<float>>{{1, 2, 3}});
  EXPECT_EQ(y.Value<std::vector<std::vector<float>>>(), (std::vector<std::vector<float>>{{6.5f, 6.5f}}));
  EXPECT_TRUE(ctx.GetVariableByScopeAndName("/dense/w")->HasValue());
  // A second shape signature re-traces: the variables exist, so use Reuse semantics there.
  KILN_EXPECT_ERROR(dense.Call(std::vector<std::vector<float>>{{1, 2, 3}, {4, 5, 6}}), "Context: variable /dense/w already exists");
}

TEST_P(ContextExec, ValueHandlesStayValidAcrossUpdates) {
  Context ctx = context::New();
  Variable* v = ctx.VariableWithValue("v", tensors::FromValue(1.0));
  auto inc = context::NewExec(Backend(), ctx, [&](Context, Node x) {
    v->SetValueGraph(v->ValueGraph(x.Graph()) + x);
    return x;
  });
  tensors::Tensor before = v->Value();
  inc.Call(tensors::FromValue(2.0));
  EXPECT_EQ(before.Value<double>(), 1.0);  // the old handle keeps the old value
  EXPECT_EQ(v->Value().Value<double>(), 3.0);
}

// Issue 10, finding 2: a cached executable keeps Variable*; deleting the
// variables and creating others used to make it read freed memory (another
// variable's value, silently). Deleted variables stay allocated, throw on
// use, and the executable traces again.
TEST_P(ContextExec, DeletedVariablesInvalidateCachedExecutables) {
  Context ctx = context::New();
  auto read = context::NewExec(Backend(), ctx, [](Context c, Node x) {
    Variable* w = c.In("a").WithInitializer(initializers::Constant(3)).VariableWithShape("w", shapes::Make(dtypes::Float32));
    return x * w->ValueGraph(x.Graph());
  });
  EXPECT_EQ(read.Call(2.0f).Value<float>(), 6.0f);
  Variable* old_w = ctx.GetVariableByScopeAndName("/a/w");
  ctx.DeleteVariablesInScope("/a");
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/a/w"), nullptr);
  EXPECT_TRUE(old_w->Deleted());
  EXPECT_FALSE(old_w->HasValue());
  EXPECT_EQ(old_w->ScopeAndName(), "/a/w");  // the handle itself stays readable
  KILN_EXPECT_ERROR(old_w->Value(), "Variable /a/w: read after Context::DeleteVariablesInScope deleted it");
  KILN_EXPECT_ERROR(old_w->SetValue(tensors::FromValue(1.0f)),
                    "Variable /a/w: SetValue after Context::DeleteVariablesInScope deleted it");
  // Other variables created meanwhile must not be read in its place.
  for (int i = 0; i < 20; ++i) ctx.In("b").VariableWithValue(std::to_string(i) + "_v", tensors::FromValue(100.0f + i));
  // The next call traces again and creates /a/w anew (initialized to 3).
  EXPECT_EQ(read.Call(2.0f).Value<float>(), 6.0f);
  Variable* new_w = ctx.GetVariableByScopeAndName("/a/w");
  ASSERT_NE(new_w, nullptr);
  EXPECT_NE(new_w, old_w);
  new_w->SetValue(tensors::FromValue(5.0f));
  EXPECT_EQ(read.Call(2.0f).Value<float>(), 10.0f);
  EXPECT_EQ(read.CacheSize(), 1u);

  // A graph that reads a deleted Variable* it kept: an error naming the line.
  auto stale = context::NewExec(Backend(), ctx, [&](Context, Node x) { return x * old_w->ValueGraph(x.Graph()); });
  KILN_EXPECT_ERROR(stale.Call(2.0f), "Variable /a/w: ValueGraph after Context::DeleteVariablesInScope deleted it (context_test.cc:");
  auto stale_update = context::NewExec(Backend(), ctx, [&](Context, Node x) {
    old_w->SetValueGraph(x);
    return x;
  });
  KILN_EXPECT_ERROR(stale_update.Call(2.0f),
                    "Variable /a/w: SetValueGraph after Context::DeleteVariablesInScope deleted it (context_test.cc:");
}

// Issue 17: context::NewExec shares graph::NewExec's cache: LRU-bounded.
TEST_P(ContextExec, CacheIsBoundedLikeGraphExecs) {
  Context ctx = context::New();
  auto twice = context::NewExec(Backend(), ctx, [](Context, Node x) { return x * 2.0f; });
  twice.SetMaxCacheSize(2);
  for (int n = 1; n <= 5; ++n) {
    EXPECT_EQ(twice.Call(std::vector<float>(static_cast<size_t>(n), 1.0f)).Value<std::vector<float>>(),
              std::vector<float>(static_cast<size_t>(n), 2.0f));
    EXPECT_EQ(twice.CacheSize(), static_cast<size_t>(std::min(n, 2)));
  }
}

// Issue 10, finding 3: one thread trains (an in-place update of w), another
// evaluates and reads w. Each step adds 1 to every element, so any value seen
// must be a whole number of steps, the same in every element: never missing,
// never re-initialized, never torn. Run under ThreadSanitizer in CI.
TEST_P(ContextExec, TrainingAndReadingFromTwoThreads) {
  Context ctx = context::New();
  constexpr int64_t kSize = 4096;
  ctx.VariableWithValue("w", tensors::FromFlat(shapes::Make(dtypes::Float32, kSize), std::vector<float>(kSize, 0.0f)));
  auto train = context::NewExec(Backend(), ctx, [](Context c, Node x) {
    Variable* w = c.Reuse().VariableWithShape("w", shapes::Make(dtypes::Float32, kSize));
    w->SetValueGraph(w->ValueGraph(x.Graph()) + x);
    return x;
  });
  auto evaluate = context::NewExec(Backend(), ctx, [](Context c, Node x) {
    Variable* w = c.Reuse().VariableWithShape("w", shapes::Make(dtypes::Float32, kSize));
    Node wv = w->ValueGraph(x.Graph());
    return graph::Concatenate({graph::ReduceMin(wv, {0}) + x, graph::ReduceMax(wv, {0}) + x}, 0);
  });
  constexpr int kSteps = 300;
  std::atomic<bool> done{false};
  std::string failure;
  std::thread reader([&] {
    try {
      float last = 0;
      while (!done.load()) {
        auto minmax = evaluate.Call(std::vector<float>{0.0f}).Value<std::vector<float>>();
        const std::vector<float> w = ctx.GetVariable("w")->Value().Value<std::vector<float>>();
        const auto [lo, hi] = std::minmax_element(w.begin(), w.end());
        if (minmax[0] != minmax[1] || *lo != *hi || minmax[0] != std::floor(minmax[0]) || minmax[0] < last ||
            *lo < minmax[0]) {
          failure = "inconsistent read: graph min/max " + std::to_string(minmax[0]) + "/" + std::to_string(minmax[1]) +
                    ", host min/max " + std::to_string(*lo) + "/" + std::to_string(*hi);
          return;
        }
        last = *lo;
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  for (int i = 0; i < kSteps; ++i) train.Call(std::vector<float>{1.0f});
  done = true;
  reader.join();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(ctx.GetVariable("w")->Value().Value<std::vector<float>>(), std::vector<float>(kSize, float(kSteps)));
}

TEST_P(ContextRandom, ReproducibleFromSeedAndDifferentPerCall) {
  auto draw = [this](uint64_t seed, int calls) {
    Context ctx = context::New();
    ctx.SetSeed(seed);
    auto exec = context::NewExec(Backend(), ctx, [](Context c, Node x) {
      return c.RandomUniform(x.Graph(), shapes::Make(dtypes::Float32, 4)) + x;
    });
    std::vector<std::vector<float>> out;
    for (int i = 0; i < calls; ++i) out.push_back(exec.Call(tensors::FromValue(0.0f)).Value<std::vector<float>>());
    return out;
  };
  auto a = draw(7, 2), b = draw(7, 2), c = draw(8, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], a[1]);
  EXPECT_NE(a[0], c[0]);
  for (float v : a[0]) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LT(v, 1.0f);
  }
}

TEST_P(ContextRandom, DistributionsHaveTheRightMoments) {
  Context ctx = context::New();
  auto exec = context::NewExec(Backend(), ctx, [](Context c, Node x) {
    graph::Graph* g = x.Graph();
    auto shape = shapes::Make(dtypes::Float64, 200000);
    return std::vector<Node>{c.RandomUniform(g, shape), c.RandomNormal(g, shape),
                             graph::ConvertDType(c.RandomBernoulli(g, 0.3, {200000}), dtypes::Float64)};
  });
  auto outs = exec.Call(tensors::FromValue(0.0));
  auto moments = [](const tensors::Tensor& t) {
    auto v = testing::ToDoubles(t);
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= v.size();
    for (double x : v) s += (x - m) * (x - m);
    return std::pair{m, std::sqrt(s / v.size())};
  };
  // Standard errors: ~0.0007 (uniform), ~0.0022 (normal), ~0.001 (Bernoulli): 5 sigma bounds.
  auto [um, us] = moments(outs[0]);
  EXPECT_NEAR(um, 0.5, 0.004);
  EXPECT_NEAR(us, std::sqrt(1.0 / 12), 0.004);
  auto [nm, ns] = moments(outs[1]);
  EXPECT_NEAR(nm, 0.0, 0.011);
  EXPECT_NEAR(ns, 1.0, 0.01);
  auto [bm, bs] = moments(outs[2]);
  EXPECT_NEAR(bm, 0.3, 0.006);
  (void)bs;
}

// Initializer statistics on large samples (mean and std within stated tolerances).
TEST_P(InitializersOnBackends, Statistics) {
  auto shape = shapes::Make(dtypes::Float32, 400, 500);  // fan_in 400, fan_out 500
  struct Case {
    const char* name;
    initializers::Initializer init;
    double mean, stddev, min, max;
  };
  const double glorot_limit = std::sqrt(6.0 / 900), he_limit = std::sqrt(6.0 / 400);
  const Case cases[] = {
      {"Zeros", initializers::Zeros(), 0, 0, 0, 0},
      {"Ones", initializers::Ones(), 1, 0, 1, 1},
      {"Constant", initializers::Constant(2.5), 2.5, 0, 2.5, 2.5},
      {"RandomUniform", initializers::RandomUniform(-1, 3), 1, 4 / std::sqrt(12.0), -1, 3},
      {"RandomNormal", initializers::RandomNormal(1, 2), 1, 2, -1e9, 1e9},
      {"TruncatedNormal", initializers::TruncatedNormal(0, 1), 0, 0.8796, -2, 2},
      {"GlorotUniform", initializers::GlorotUniform(), 0, glorot_limit / std::sqrt(3.0), -glorot_limit, glorot_limit},
      {"GlorotNormal", initializers::GlorotNormal(), 0, std::sqrt(2.0 / 900), -1e9, 1e9},
      {"HeUniform", initializers::HeUniform(), 0, he_limit / std::sqrt(3.0), -he_limit, he_limit},
      {"HeNormal", initializers::HeNormal(), 0, std::sqrt(2.0 / 400), -1e9, 1e9},
  };
  for (const Case& c : cases) {
    Context ctx = context::New();
    Variable* v = ctx.WithInitializer(c.init).VariableWithShape("w", shape);
    context::InitializeVariables(Backend(), ctx);
    auto values = testing::ToDoubles(v->Value());
    double m = 0, s = 0, lo = 1e300, hi = -1e300;
    for (double x : values) {
      m += x;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    m /= values.size();
    for (double x : values) s += (x - m) * (x - m);
    s = std::sqrt(s / values.size());
    // 200k samples: mean within 1% of stddev (plus a floor), stddev within 2%.
    EXPECT_NEAR(m, c.mean, 0.01 * c.stddev + 1e-6) << c.name;
    EXPECT_NEAR(s, c.stddev, 0.02 * c.stddev + 1e-6) << c.name;
    EXPECT_GE(lo, c.min - 1e-6) << c.name;
    EXPECT_LE(hi, c.max + 1e-6) << c.name;
  }
}

TEST_P(InitializersOnBackends, DeterministicFromSeedAndIndependentOfCreationOrder) {
  auto make = [this](uint64_t seed, bool reversed) {
    Context ctx = context::New();
    ctx.SetSeed(seed);
    std::vector<std::string> names = {"a", "b"};
    if (reversed) std::swap(names[0], names[1]);
    for (const auto& n : names) ctx.VariableWithShape(n, shapes::Make(dtypes::Float32, 8));
    context::InitializeVariables(Backend(), ctx);
    return ctx.GetVariable("a")->Value().Value<std::vector<float>>();
  };
  EXPECT_EQ(make(1, false), make(1, true));
  EXPECT_NE(make(1, false), make(2, false));
  Context ctx = context::New();
  KILN_EXPECT_ERROR(ctx.WithInitializer(initializers::GlorotUniform()).VariableWithShape("i", shapes::Make(dtypes::Int32, 2));
                    context::InitializeVariables(Backend(), ctx),
                    "initializer GlorotUniform: requires a float variable, got Int32[2]");
}

TEST(Initializers, Fans) {
  EXPECT_EQ(initializers::ComputeFans(shapes::Make(dtypes::Float32, 3, 4)), (std::pair<int64_t, int64_t>{3, 4}));
  EXPECT_EQ(initializers::ComputeFans(shapes::Make(dtypes::Float32, 3, 3, 8, 16)), (std::pair<int64_t, int64_t>{72, 144}));
  EXPECT_EQ(initializers::ComputeFans(shapes::Make(dtypes::Float32, 5)), (std::pair<int64_t, int64_t>{5, 5}));
}

INSTANTIATE_TEST_SUITE_P(Backends, ContextExec, ::testing::ValuesIn(testing::BackendNames()), testing::BackendParamName);
INSTANTIATE_TEST_SUITE_P(Backends, ContextRandom, ::testing::ValuesIn(testing::BackendNames()), testing::BackendParamName);
INSTANTIATE_TEST_SUITE_P(Backends, InitializersOnBackends, ::testing::ValuesIn(testing::BackendNames()), testing::BackendParamName);

}  // namespace
}  // namespace kiln
