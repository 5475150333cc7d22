// Copyright 2026 The Kiln Authors.
// Recorded executables (src/backends/cuda/graph_replay.h) on the CUDA
// backend, on a GPU where one is present, else on the emulator's runtime,
// whose captured graphs run their launches, products and copies later with
// the addresses of the recording run: a replay must
// give what running the steps gives, update donated arguments in place, and
// never overwrite a result the caller still holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/ml/layers/layers.h"
#include "kiln/ml/losses/losses.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "kiln/ml/train/trainer.h"
#include "src/backends/cuda/emulator.h"
#include "src/backends/cuda/graph_replay.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using backends::cuda::GetGraphStats;
using backends::cuda::GraphStats;
using graph::Node;
using tensors::Tensor;

// The CUDA backend on a GPU, else its emulator.
std::shared_ptr<backends::Backend> CudaOrEmulator() {
  const std::vector<std::string> names = backends::Available();
  if (std::find(names.begin(), names.end(), "cuda") != names.end()) return backends::NewWithName("cuda");
  backends::cuda::RegisterCudaEmulatorBackend();
  return backends::NewWithName("cuda-emu");
}

// Counters since `before`.
GraphStats Since(const GraphStats& before) {
  const GraphStats now = GetGraphStats();
  return {now.recorded - before.recorded, now.replayed - before.replayed,
          now.record_failures - before.record_failures, now.replay_failures - before.replay_failures};
}

// Two products around a fused chain and a row reduction: enough launches
// to be recorded under the default policy.
std::vector<Node> TwoProducts(const std::vector<Node>& p) {
  Node h = graph::Tanh(graph::MatMul(p[0], p[1]));
  return {graph::ReduceSum(graph::MatMul(h, p[2]) * 2.0f, {1}) + 1.0f};
}

// The same arguments twice in a row: recorded on the second call, replayed
// from then on; products, a fused chain and a row reduction, as on the CPU.
// A program of one kernel is not recorded (a replay would cost more).
TEST(CudaGraphReplayTest, RepeatedCallsReplayTheRecording) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "repeat");
  auto emu = CudaOrEmulator();
  auto cpu = backends::NewWithName("cpu");
  auto fn = TwoProducts;
  testing::Rng rng(5);
  Tensor x = testing::Random(shapes::Make(dtypes::Float32, 9, 33), rng, -1, 1);
  Tensor w = testing::Random(shapes::Make(dtypes::Float32, 33, 17), rng, -1, 1);
  Tensor w2 = testing::Random(shapes::Make(dtypes::Float32, 17, 5), rng, -1, 1);
  const Tensor want = graph::NewExec(cpu, fn).CallVector({x, w, w2})[0];
  auto exec = graph::NewExec(emu, fn);
  const GraphStats before = GetGraphStats();
  std::vector<Tensor> got;
  for (int i = 0; i < 4; ++i) {
    got.push_back(exec.CallVector({x, w, w2})[0]);
    const GraphStats s = Since(before);
    EXPECT_EQ(s.recorded, i == 0 ? 0 : 1) << "call " << i;
    EXPECT_EQ(s.replayed, i) << "call " << i;
  }
  EXPECT_EQ(Since(before).record_failures, 0);
  for (const Tensor& t : got) EXPECT_TRUE(testing::AllClose(t, want, 1e-5, 1e-5));
  auto tiny = graph::NewExec(emu, [](Node v) { return v * 2.0f + 1.0f; });
  const GraphStats mid = GetGraphStats();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(testing::AllClose(tiny.Call(x), graph::NewExec(cpu, [](Node v) {
                                                              return v * 2.0f + 1.0f;
                                                            }).Call(x), 0, 0));
  EXPECT_EQ(Since(mid).recorded, 0);
}

// A train-step shape: the weights donated and updated in place (so their
// address repeats and the recording replays), a fresh loss each step. Every
// loss kept stays its own step's value.
TEST(CudaGraphReplayTest, DonatedUpdatesReplayInPlaceAndKeptResultsStay) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "always");
  auto emu = CudaOrEmulator();
  auto step = graph::NewExec(emu, [](const std::vector<Node>& p) {
    // The loss first: the update then reads the weights last, in place.
    return std::vector<Node>{graph::ReduceAllSum(p[0] * p[0]), p[0] - p[1] * 0.5f};
  });
  Tensor w = tensors::FromValue(std::vector<float>{1, 2, 3, 4});
  const Tensor g = tensors::FromValue(std::vector<float>{2, 2, 2, 2});
  std::vector<float> host = {1, 2, 3, 4};
  std::vector<Tensor> losses;
  std::vector<float> want_losses;
  const GraphStats before = GetGraphStats();
  for (int i = 0; i < 6; ++i) {
    float loss = 0;
    for (float v : host) loss += v * v;
    want_losses.push_back(loss);
    std::vector<Tensor> out = step.CallVector({w, g}, {true, false});
    w = out[1];
    losses.push_back(out[0]);
    for (float& v : host) v -= 1;
    EXPECT_EQ(w.Value<std::vector<float>>(), host) << "step " << i;
  }
  const GraphStats s = Since(before);
  EXPECT_EQ(s.recorded, 1);
  EXPECT_EQ(s.replayed, 6);
  for (size_t i = 0; i < losses.size(); ++i) EXPECT_EQ(losses[i].Value<float>(), want_losses[i]) << "step " << i;
}

// Outputs that are an argument passed through or a constant come back as
// such on a replay; one recording per address of a donated argument (the
// least recently used of two goes).
TEST(CudaGraphReplayTest, EachArgumentAddressHasItsRecording) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "always");
  auto emu = CudaOrEmulator();
  auto exec = graph::NewExec(emu, [](const std::vector<Node>& p) {
    Node c = graph::Const(p[0].Graph(), std::vector<float>{7, 8, 9});
    return std::vector<Node>{p[0], c, p[0] * 3.0f};
  });
  std::vector<Tensor> xs;
  for (int i = 0; i < 3; ++i) {
    xs.push_back(tensors::FromValue(std::vector<float>{static_cast<float>(i), 1, 2}));
  }
  // Donated and passed through: each x keeps its buffer from call to call.
  const auto call = [&](size_t i) {
    std::vector<Tensor> out = exec.CallVector({xs[i]}, {true});
    xs[i] = out[0];
    return out;
  };
  const GraphStats before = GetGraphStats();
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 3; ++i) {
      std::vector<Tensor> out = call(static_cast<size_t>(i));
      const auto f = static_cast<float>(i);
      EXPECT_EQ(out[0].Value<std::vector<float>>(), (std::vector<float>{f, 1, 2}));
      EXPECT_EQ(out[1].Value<std::vector<float>>(), (std::vector<float>{7, 8, 9}));
      EXPECT_EQ(out[2].Value<std::vector<float>>(), (std::vector<float>{3 * f, 3, 6}));
    }
  }
  // Three addresses, two kept: every call of the second round records anew
  // (x0 was dropped for x2, x1 for x0, ...).
  const GraphStats s = Since(before);
  EXPECT_EQ(s.recorded, 6);
  EXPECT_EQ(s.replayed, 6);
  // Alternating between two addresses replays both recordings.
  const GraphStats mid = GetGraphStats();
  for (int i = 0; i < 4; ++i) call(static_cast<size_t>(i % 2));
  EXPECT_EQ(Since(mid).recorded, 2);
  EXPECT_EQ(Since(mid).replayed, 4);
}

// A replay that fails (on a GPU, a graph launch whose memory cannot be
// had; here the emulator told to fail one) drops the recordings: that call
// and every later one run step by step, with the CPU's results.
TEST(CudaGraphReplayTest, AFailedReplayRunsStepByStepFromThenOn) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "repeat");
  auto emu = CudaOrEmulator();
  if (emu->Name() != "cuda-emu") GTEST_SKIP() << "a failing replay is the emulator's to simulate";
  auto cpu = backends::NewWithName("cpu");
  auto fn = TwoProducts;
  testing::Rng rng(9);
  const Tensor x = testing::Random(shapes::Make(dtypes::Float32, 6, 12), rng, -1, 1);
  const Tensor w = testing::Random(shapes::Make(dtypes::Float32, 12, 10), rng, -1, 1);
  const Tensor w2 = testing::Random(shapes::Make(dtypes::Float32, 10, 4), rng, -1, 1);
  const Tensor want = graph::NewExec(cpu, fn).CallVector({x, w, w2})[0];
  auto exec = graph::NewExec(emu, fn);
  const GraphStats before = GetGraphStats();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(testing::AllClose(exec.CallVector({x, w, w2})[0], want, 1e-5, 1e-5)) << "call " << i;
  ASSERT_EQ(Since(before).recorded, 1);  // on the second call, which replays it
  ASSERT_EQ(Since(before).replayed, 2);
  backends::cuda::FailNextEmulatorReplays(1);
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(testing::AllClose(exec.CallVector({x, w, w2})[0], want, 1e-5, 1e-5)) << "call " << i;
  backends::cuda::FailNextEmulatorReplays(0);
  EXPECT_EQ(Since(before).replay_failures, 1);
  EXPECT_EQ(Since(before).replayed, 2);  // none after the failure
  EXPECT_EQ(Since(before).recorded, 1);  // and no new recording
  EXPECT_EQ(Since(before).record_failures, 0);
}

// A fresh batch each call (an argument read only, at a new address every
// time): after two calls at different addresses it is read from an input
// slot, so the third call records and every later one replays, each with
// its own batch's results; a batch passed through comes back as itself.
TEST(CudaGraphReplayTest, MovingArgumentsAreCopiedIntoInputSlots) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "repeat");
  auto emu = CudaOrEmulator();
  auto cpu = backends::NewWithName("cpu");
  auto fn = [](const std::vector<Node>& p) {
    std::vector<Node> outs = TwoProducts(p);
    outs.push_back(p[0]);  // passed through
    return outs;
  };
  testing::Rng rng(6);
  const Tensor w = testing::Random(shapes::Make(dtypes::Float32, 12, 10), rng, -1, 1);
  const Tensor w2 = testing::Random(shapes::Make(dtypes::Float32, 10, 4), rng, -1, 1);
  auto exec = graph::NewExec(emu, fn);
  auto reference = graph::NewExec(cpu, fn);
  std::vector<Tensor> batches;
  // Every batch's device buffer, kept so that each batch has its own
  // address (a tensor caches one backend's buffer; the CPU's call below
  // would drop it, and the next batch's upload could get its address).
  std::vector<backends::BufferPtr> uploaded;
  const GraphStats before = GetGraphStats();
  for (int i = 0; i < 7; ++i) {
    batches.push_back(testing::Random(shapes::Make(dtypes::Float32, 6, 12), rng, -1, 1));
    uploaded.push_back(batches.back().BufferFor(*emu));
    const std::vector<Tensor> got = exec.CallVector({batches.back(), w, w2});
    const std::vector<Tensor> want = reference.CallVector({batches.back(), w, w2});
    EXPECT_TRUE(testing::AllClose(got[0], want[0], 1e-5, 1e-5)) << "call " << i;
    EXPECT_TRUE(testing::AllClose(got[1], batches.back(), 0, 0)) << "call " << i;
    const GraphStats now = Since(before);
    EXPECT_EQ(now.recorded, i < 2 ? 0 : 1) << "call " << i;
    EXPECT_EQ(now.replayed, std::max(0, i - 1)) << "call " << i;
  }
  EXPECT_EQ(Since(before).record_failures, 0);
}

// A Trainer's Adam steps (variables donated, so updated in place): recorded
// on the second step, replayed after, with the CPU's losses.
TEST(CudaGraphReplayTest, TrainerStepsReplayWithTheCpusLosses) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "repeat");
  auto emu = CudaOrEmulator();
  auto cpu = backends::NewWithName("cpu");
  testing::Rng rng(9);
  const Tensor x = testing::Random(shapes::Make(dtypes::Float32, 16, 12), rng, -1, 1);
  std::vector<int32_t> labels(16);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  const ml::datasets::Batch batch{{x}, {tensors::FromValue(labels)}};
  auto model = [](context::Context ctx, const std::vector<Node>& in) {
    Node h = graph::Relu(ml::layers::Dense(ctx.In("dense0"), in[0], 8));
    return std::vector<Node>{ml::layers::Dense(ctx.In("logits"), h, 3)};
  };
  std::vector<double> losses[2];
  GraphStats s;
  for (int b = 0; b < 2; ++b) {
    context::Context ctx = context::New();
    ctx.SetParam("learning_rate", 0.05);
    auto trainer = ml::train::NewTrainer(b == 0 ? cpu : emu, ctx, model,
                                         ml::losses::SparseCategoricalCrossEntropyLogits, ml::optimizers::Adam());
    const GraphStats before = GetGraphStats();
    for (int i = 0; i < 8; ++i) losses[b].push_back(trainer->TrainStep(batch).at("loss"));
    if (b == 1) s = Since(before);
  }
  EXPECT_GE(s.recorded, 1);
  EXPECT_GE(s.replayed, 6);
  EXPECT_LT(losses[0].back(), losses[0].front());  // it learns
  for (size_t i = 0; i < losses[0].size(); ++i) {
    EXPECT_NEAR(losses[1][i], losses[0][i], 1e-4 * std::abs(losses[0][i]) + 1e-6) << "step " << i;
  }
}

// Edge cases of the outputs: one value returned twice, an empty output, a
// donated argument returned unchanged, a scalar; each call's results its
// own across replays.
TEST(CudaGraphReplayTest, RepeatedEmptyAndPassedThroughOutputs) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "always");
  auto emu = CudaOrEmulator();
  auto exec = graph::NewExec(emu, [](const std::vector<Node>& p) {
    Node y = graph::Tanh(p[0]) * 2.0f;
    return std::vector<Node>{y, y, graph::ReduceSum(p[1], {0}), p[2], graph::ReduceAllSum(p[0])};
  });
  const Tensor x = tensors::FromValue(std::vector<float>{0.5f, -1, 2});
  const Tensor empty(shapes::Make(dtypes::Float32, 0, 4));
  std::vector<std::vector<Tensor>> results;
  const GraphStats before = GetGraphStats();
  for (int i = 0; i < 3; ++i) {
    Tensor passed = tensors::FromValue(std::vector<float>{static_cast<float>(i), 7});
    results.push_back(exec.CallVector({x, empty, passed}, {false, false, true}));
  }
  EXPECT_EQ(Since(before).record_failures, 0);
  EXPECT_GE(Since(before).replayed, 3);
  for (int i = 0; i < 3; ++i) {
    const std::vector<Tensor>& r = results[static_cast<size_t>(i)];
    ASSERT_EQ(r.size(), 5u);
    const std::vector<float> y = {2 * std::tanh(0.5f), 2 * std::tanh(-1.0f), 2 * std::tanh(2.0f)};
    EXPECT_TRUE(testing::AllClose(r[0], tensors::FromValue(y), 1e-6, 1e-6));
    EXPECT_TRUE(testing::AllClose(r[1], tensors::FromValue(y), 1e-6, 1e-6));
    EXPECT_EQ(r[2].Shape(), shapes::Make(dtypes::Float32, 4));
    EXPECT_EQ(r[2].Value<std::vector<float>>(), std::vector<float>(4, 0.0f));
    EXPECT_EQ(r[3].Value<std::vector<float>>(), (std::vector<float>{static_cast<float>(i), 7}));
    EXPECT_FLOAT_EQ(r[4].Value<float>(), 1.5f);
  }
}

// Programs that read values on the host (While, If, solver calls) run step
// by step; KILN_CUDA_GRAPHS=off records nothing.
TEST(CudaGraphReplayTest, HostRoundTripsAndOffRunStepByStep) {
  auto emu = CudaOrEmulator();
  const Tensor x = tensors::FromValue(std::vector<float>{1, 2});
  {
    testing::ScopedEnv env("KILN_CUDA_GRAPHS", "always");
    auto loop = graph::NewExec(emu, [](Node v) {
      return graph::ForLoop(3, [](Node, const std::vector<Node>& c) { return std::vector<Node>{c[0] * 2.0f}; }, {v})[0];
    });
    const GraphStats before = GetGraphStats();
    for (int i = 0; i < 2; ++i) EXPECT_EQ(loop.Call(x).Value<std::vector<float>>(), (std::vector<float>{8, 16}));
    EXPECT_EQ(Since(before).recorded, 0);
    EXPECT_EQ(Since(before).replayed, 0);
  }
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "off");
  auto plain = graph::NewExec(emu, [](Node v) { return v + 1.0f; });
  const GraphStats before = GetGraphStats();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(plain.Call(x).Value<std::vector<float>>(), (std::vector<float>{2, 3}));
  EXPECT_EQ(Since(before).recorded, 0);
}

TEST(CudaGraphReplayTest, BadPolicyIsAnError) {
  testing::ScopedEnv env("KILN_CUDA_GRAPHS", "sometimes");
  KILN_EXPECT_ERROR(backends::cuda::GraphPolicyFromEnvironment(), "KILN_CUDA_GRAPHS must be off, repeat or always");
}

}  // namespace
}  // namespace kiln
