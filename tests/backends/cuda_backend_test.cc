// Copyright 2026 The Kiln Authors.
// The CUDA backend on a GPU, against the CPU backend: identical random bits,
// the same training curve, concurrent calls, device selection. Every test
// skips where no GPU is available (the op conformance tables run on CUDA
// through testing::BackendNames() there as well); with
// KILN_TEST_BACKENDS=cuda-emu they run on the CUDA emulator instead.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "src/backends/cuda/cudnn_conv.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

// The CUDA backend on a GPU, or its host emulator where KILN_TEST_BACKENDS
// names "cuda-emu" (the same programs, kernels compiled for the host).
std::shared_ptr<backends::Backend> CudaOrNull() {
  for (const std::string& name : testing::BackendNames()) {
    if (name == "cuda" || name == "cuda-emu") return backends::NewWithName(name);
  }
  return nullptr;
}

#define KILN_REQUIRE_GPU(var)                            \
  auto var = CudaOrNull();                               \
  if (!var) GTEST_SKIP() << "no CUDA device is available"

TEST(CudaBackendTest, RandomBitsMatchTheCpu) {
  KILN_REQUIRE_GPU(cuda);
  auto cpu = backends::NewWithName("cpu");
  Tensor state = tensors::FromValue(std::vector<uint64_t>{42, 7, 0xFFFFFFFFFFFFFFF0ull});
  for (dtypes::DType dt : {dtypes::Uint8, dtypes::Uint32, dtypes::Uint64}) {
    SCOPED_TRACE(dtypes::Name(dt));
    auto bits = [dt](Node s) { return graph::RNGBitGenerator(s, shapes::Make(dt, 1001)).second; };
    Tensor a = graph::NewExec(cpu, bits).Call(state);
    Tensor b = graph::NewExec(cuda, bits).Call(state);
    EXPECT_TRUE(testing::AllClose(b, a, 0, 0));
  }
  auto uniform = [](Node s) { return graph::RandomUniform(s, shapes::Make(dtypes::Float32, 4096)).second; };
  EXPECT_TRUE(testing::AllClose(graph::NewExec(cuda, uniform).Call(state),
                                graph::NewExec(cpu, uniform).Call(state), 0, 0));
}

// Twenty SGD steps of a two-layer classifier from the same start: the loss
// curves agree to float32 rounding (cuBLASLt and the CPU sum in different
// orders).
TEST(CudaBackendTest, MlpTrainingMatchesTheCpu) {
  KILN_REQUIRE_GPU(cuda);
  auto cpu = backends::NewWithName("cpu");
  testing::Rng rng(7);
  Tensor x = testing::Random(shapes::Make(dtypes::Float32, 64, 20), rng, -1, 1);
  std::vector<double> labels(64 * 5, 0.0);
  for (int i = 0; i < 64; ++i) labels[static_cast<size_t>(i * 5 + i % 5)] = 1;
  Tensor y = testing::FromDoubles(shapes::Make(dtypes::Float32, 64, 5), labels);
  auto step = [](Node xs, Node ys, Node w1, Node w2) {
    Node h = graph::Tanh(graph::MatMul(xs, w1));
    Node loss = graph::Neg(graph::ReduceAllMean(graph::ReduceSum(ys * graph::LogSoftmax(graph::MatMul(h, w2)), {1})));
    std::vector<Node> g = graph::Gradient(loss, {w1, w2});
    return std::vector<Node>{loss, w1 - g[0] * 0.5f, w2 - g[1] * 0.5f};
  };
  std::vector<double> losses[2];
  for (int b = 0; b < 2; ++b) {
    auto exec = graph::NewExec(b == 0 ? cpu : cuda, step);
    testing::Rng init(11);
    Tensor w1 = testing::Random(shapes::Make(dtypes::Float32, 20, 32), init, -0.3, 0.3);
    Tensor w2 = testing::Random(shapes::Make(dtypes::Float32, 32, 5), init, -0.3, 0.3);
    for (int i = 0; i < 20; ++i) {
      std::vector<Tensor> outs = exec.Call(x, y, w1, w2);
      losses[b].push_back(outs[0].Value<float>());
      w1 = outs[1];
      w2 = outs[2];
    }
  }
  ASSERT_EQ(losses[0].size(), losses[1].size());
  EXPECT_LT(losses[0].back(), losses[0].front() * 0.8);  // it learns
  for (size_t i = 0; i < losses[0].size(); ++i) {
    EXPECT_NEAR(losses[1][i], losses[0][i], 1e-4 * std::abs(losses[0][i]) + 1e-6) << "step " << i;
  }
}

// The same for a small CNN (NHWC convolution, max pooling, dense layer):
// the forward convolution and the kernel gradient run on cuDNN where it
// is there (im2col + cuBLASLt otherwise), on oneDNN on the CPU.
TEST(CudaBackendTest, CnnTrainingMatchesTheCpu) {
  KILN_REQUIRE_GPU(cuda);
  const backends::cuda::CudnnStats cudnn_before = backends::cuda::GetCudnnStats();
  auto cpu = backends::NewWithName("cpu");
  testing::Rng rng(3);
  Tensor x = testing::Random(shapes::Make(dtypes::Float32, 32, 8, 8, 1), rng, -1, 1);
  std::vector<double> labels(32 * 4, 0.0);
  for (int i = 0; i < 32; ++i) labels[static_cast<size_t>(i * 4 + i % 4)] = 1;
  Tensor y = testing::FromDoubles(shapes::Make(dtypes::Float32, 32, 4), labels);
  auto step = [](Node xs, Node ys, Node k, Node w) {
    ir::ConvAttrs a;
    a.input_batch_axis = 0, a.input_feature_axis = 3, a.input_spatial_axes = {1, 2};
    a.kernel_input_feature_axis = 2, a.kernel_output_feature_axis = 3, a.kernel_spatial_axes = {0, 1};
    a.output_batch_axis = 0, a.output_feature_axis = 3, a.output_spatial_axes = {1, 2};
    a.strides = {1, 1}, a.padding_low = {1, 1}, a.padding_high = {1, 1};
    a.input_dilation = {1, 1}, a.kernel_dilation = {1, 1};
    ir::WindowAttrs pool;
    pool.reduction = ir::WindowReduction::kMax;
    pool.window_dimensions = {1, 2, 2, 1}, pool.strides = {1, 2, 2, 1};
    pool.base_dilations = {1, 1, 1, 1}, pool.window_dilations = {1, 1, 1, 1};
    pool.padding_low = {0, 0, 0, 0}, pool.padding_high = {0, 0, 0, 0};
    Node h = graph::ReduceWindow(graph::Relu(graph::ConvGeneral(xs, k, a)), pool);  // [32, 4, 4, 6]
    Node logits = graph::MatMul(graph::Reshape(h, {32, 4 * 4 * 6}), w);
    Node loss = graph::Neg(graph::ReduceAllMean(graph::ReduceSum(ys * graph::LogSoftmax(logits), {1})));
    std::vector<Node> g = graph::Gradient(loss, {k, w});
    return std::vector<Node>{loss, k - g[0] * 0.2f, w - g[1] * 0.2f};
  };
  std::vector<double> losses[2];
  for (int b = 0; b < 2; ++b) {
    auto exec = graph::NewExec(b == 0 ? cpu : cuda, step);
    testing::Rng init(5);
    Tensor k = testing::Random(shapes::Make(dtypes::Float32, 3, 3, 1, 6), init, -0.5, 0.5);
    Tensor w = testing::Random(shapes::Make(dtypes::Float32, 96, 4), init, -0.2, 0.2);
    for (int i = 0; i < 15; ++i) {
      std::vector<Tensor> outs = exec.Call(x, y, k, w);
      losses[b].push_back(outs[0].Value<float>());
      k = outs[1];
      w = outs[2];
    }
  }
  EXPECT_LT(losses[0].back(), losses[0].front());  // it learns
  for (size_t i = 0; i < losses[0].size(); ++i) {
    EXPECT_NEAR(losses[1][i], losses[0][i], 1e-4 * std::abs(losses[0][i]) + 1e-6) << "step " << i;
  }
  // On a GPU with cuDNN: both convolutions planned there, none refused.
  if (cuda->Name() == "cuda" && backends::cuda::CudnnUnavailableReason().empty() &&
      backends::cuda::ProgramOptionsFromEnvironment().cudnn) {
    const backends::cuda::CudnnStats after = backends::cuda::GetCudnnStats();
    EXPECT_GE(after.planned - cudnn_before.planned, 2) << cuda->Description();
    EXPECT_EQ(after.refused - cudnn_before.refused, 0) << cuda->Description();
  }
}

// Execute is thread-safe: several host threads share one executable.
TEST(CudaBackendTest, ConcurrentCallsGetTheirOwnResults) {
  KILN_REQUIRE_GPU(cuda);
  auto exec = graph::NewExec(cuda, [](Node a) { return graph::ReduceSum(graph::Exp(a) * 2.0f, {0}); });
  std::vector<std::thread> threads;
  std::vector<int> wrong(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const float v = static_cast<float>(t) * 0.1f;
        std::vector<float> in(1000, v);
        const float got = exec.Call(tensors::FromValue(in)).Value<float>();
        if (std::abs(got - 2000.0f * std::exp(v)) > 1e-3f * got) ++wrong[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(wrong[static_cast<size_t>(t)], 0) << "thread " << t;
}

TEST(CudaBackendTest, DeviceSelection) {
  KILN_REQUIRE_GPU(cuda);
  if (cuda->Name() != "cuda") GTEST_SKIP() << "devices exist on a GPU only";
  EXPECT_EQ(backends::NewWithName("cuda:0")->Name(), "cuda");
  EXPECT_NE(cuda->Description().find("cuda:0 ("), std::string::npos) << cuda->Description();
  KILN_EXPECT_ERROR(backends::NewWithName("cuda:99"), "device 99 does not exist");
  KILN_EXPECT_ERROR(backends::NewWithName("cuda:x"), "bad device \"x\"");
  EXPECT_EQ(backends::New()->Name(), "cuda");  // the GPU comes first
}

// A donated argument is consumed (its memory may hold the result), and a
// result that is not donated is never overwritten by a later call.
TEST(CudaBackendTest, DonationAndReuseKeepValues) {
  KILN_REQUIRE_GPU(cuda);
  auto exec = graph::NewExec(cuda, [](const std::vector<Node>& p) { return std::vector<Node>{p[0] - p[1] * 0.5f}; });
  Tensor w = tensors::FromValue(std::vector<float>{1, 2, 3, 4});
  Tensor g = tensors::FromValue(std::vector<float>{2, 2, 2, 2});
  Tensor first = exec.CallVector({w, g})[0];
  Tensor second = exec.CallVector({first, g})[0];
  EXPECT_EQ(first.Value<std::vector<float>>(), (std::vector<float>{0, 1, 2, 3}));
  EXPECT_EQ(second.Value<std::vector<float>>(), (std::vector<float>{-1, 0, 1, 2}));
  EXPECT_EQ(w.Value<std::vector<float>>(), (std::vector<float>{1, 2, 3, 4}));
  Tensor donated = exec.CallVector({second, g}, {true, false})[0];
  EXPECT_EQ(donated.Value<std::vector<float>>(), (std::vector<float>{-2, -1, 0, 1}));
  EXPECT_THROW(second.HostData(), Error);  // the donated tensor holds no value
}

// A tensor knows its buffer by the owner's address: its buffer keeps the
// backend alive, so no later backend takes that address while the tensor
// holds it, and asking for the backend again gives the same one.
TEST(CudaBackendTest, BuffersKeepTheirBackend) {
  Tensor x = tensors::FromValue(std::vector<float>{1, 2, 3});
  std::weak_ptr<backends::Backend> first;
  {
    KILN_REQUIRE_GPU(cuda);
    first = cuda;
    EXPECT_EQ(graph::NewExec(cuda, [](Node a) { return a * 2.0f; }).Call(x).Value<std::vector<float>>(),
              (std::vector<float>{2, 4, 6}));
    ASSERT_TRUE(x.IsOn(*cuda));
  }
  EXPECT_FALSE(first.expired());  // x's buffer holds it
  auto again = CudaOrNull();
  EXPECT_EQ(again, first.lock());
  EXPECT_EQ(graph::NewExec(again, [](Node a) { return a + 1.0f; }).Call(x).Value<std::vector<float>>(),
            (std::vector<float>{2, 3, 4}));
}

}  // namespace
}  // namespace kiln
