// Copyright 2026 The Kiln Authors.
// KILN_CUDA_PROFILE=1 on the CUDA emulator: an executable prints, when it is
// destroyed, the GPU time of each step (events around its work), naming the
// op, its shape and the caller's line, the ops a kernel fuses and the
// library a call runs on; a loop's body is a function of its own, counted
// once per trip, and an If's branch once per call that takes it; a failed
// call is not counted; profiled executables run step by step, never as
// CUDA graphs, with the results of an unprofiled run; nothing is printed
// without the variable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "kiln/graph/control_flow.h"
#include "kiln/kiln.h"
#include "src/backends/cuda/graph_replay.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

std::shared_ptr<backends::Backend> Emulator() { return testing::NewTestBackend("cuda-emu"); }

// A dense layer with a bias and a ReLU, a fused reduction, and a loop of 3
// trips: its outputs.
std::vector<Node> Model(const std::vector<Node>& p) {
  Node h = graph::Relu(graph::MatMul(p[0], p[1]) + p[2]);
  Node rows = graph::ReduceSum(graph::Exp(h) * 2.0f, {1});
  Node looped = graph::ForLoop(3, [](Node, const std::vector<Node>& c) { return std::vector<Node>{c[0] * 0.5f + 1.0f}; },
                               {rows})[0];
  return {h, looped};
}

std::vector<Tensor> Inputs() {
  testing::Rng rng(5);
  return {testing::Random(shapes::Make(dtypes::Float32, 8, 16), rng, -1, 1),
          testing::Random(shapes::Make(dtypes::Float32, 16, 4), rng, -1, 1),
          testing::Random(shapes::Make(dtypes::Float32, 4), rng, -1, 1)};
}

// Runs the model `calls` times on the emulator (under the current
// environment), destroys the executable, and returns what it printed to
// stderr meanwhile; `results` gets the last call's outputs.
std::string RunAndCapture(int calls, std::vector<Tensor>* results) {
  auto emu = Emulator();
  const std::vector<Tensor> in = Inputs();
  ::testing::internal::CaptureStderr();
  {
    auto exec = graph::NewExec(emu, Model);
    for (int i = 0; i < calls; ++i) *results = exec.CallVector(in);
    for (Tensor& t : *results) t.HostData();  // on the host before the executable goes
  }
  return ::testing::internal::GetCapturedStderr();
}

// The number after `key` in `text` (-1 if `key` is missing).
double NumberAfter(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::strtod(text.c_str() + at + key.size(), nullptr);
}

TEST(CudaProfile, PrintsEachStepsGpuTimeWithOpShapeAndCaller) {
  std::vector<Tensor> profiled, plain;
  std::string out;
  {
    testing::ScopedEnv env("KILN_CUDA_PROFILE", "1");
    out = RunAndCapture(2, &profiled);
  }
  // The main function: two executions, its GPU time and its wall time.
  ASSERT_NE(out.find("kiln cuda-emu profile of \""), std::string::npos) << out;
  EXPECT_NE(out.find("\": 2 executions, "), std::string::npos) << out;
  EXPECT_GT(NumberAfter(out, "\": 2 executions, "), 0) << out;
  EXPECT_NE(out.find(" ms of GPU time per execution in "), std::string::npos) << out;
  EXPECT_NE(out.find(" ms per execution from call to results)"), std::string::npos) << out;
  // The product with its bias epilogue and the ReLU's kernel, each with the caller's line.
  EXPECT_NE(out.find("DotGeneral and Add -> Float32[8, 4] (cuda_profile_test.cc:"), std::string::npos) << out;
  EXPECT_NE(out.find("[cuBLASLt 8x4x16, bias epilogue]"), std::string::npos) << out;
  EXPECT_NE(out.find("Max -> Float32[8, 4] (cuda_profile_test.cc:"), std::string::npos) << out;
  // The reduction fuses Exp and the product by 2; constants and their
  // broadcasts are not named.
  EXPECT_NE(out.find("fused 3 ops -> Float32[8]: Exp Mul ReduceSum (cuda_profile_test.cc:"), std::string::npos) << out;
  EXPECT_EQ(out.find("Constant"), std::string::npos) << out;
  EXPECT_EQ(out.find("BroadcastInDim"), std::string::npos) << out;
  // The loop: a span in the main function, its body a function of its own
  // run 3 times per call.
  EXPECT_NE(out.find("While (cuda_profile_test.cc:"), std::string::npos) << out;
  EXPECT_NE(out.find("[span on the GPU; what it runs is profiled as functions of their own]"), std::string::npos)
      << out;
  EXPECT_NE(out.find("/while_body\": 6 executions, "), std::string::npos) << out;
  EXPECT_NE(out.find("/while_cond\": 8 executions, "), std::string::npos) << out;
  EXPECT_NE(out.find(": Mul Add (cuda_profile_test.cc:"), std::string::npos) << out;

  // The same results without the profile.
  testing::ScopedEnv off("KILN_CUDA_PROFILE", nullptr);
  EXPECT_EQ(RunAndCapture(2, &plain).find("kiln cuda-emu profile"), std::string::npos);
  ASSERT_EQ(profiled.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    const auto a = profiled[i].Flat<float>(), b = plain[i].Flat<float>();
    EXPECT_EQ(std::vector<float>(a.begin(), a.end()), std::vector<float>(b.begin(), b.end())) << i;
  }
}

// Every call recorded as a CUDA graph where it may be (no loop here):
// profiled calls run step by step instead, with the same results.
TEST(CudaProfile, ProfiledExecutablesRunStepByStep) {
  testing::ScopedEnv always("KILN_CUDA_GRAPHS", "always");
  auto emu = Emulator();
  const std::vector<Tensor> in = Inputs();
  auto dense = [](const std::vector<Node>& p) {
    Node h = graph::Relu(graph::MatMul(p[0], p[1]) + p[2]);
    return std::vector<Node>{graph::ReduceSum(graph::Exp(h) * 2.0f, {1}), h * h, graph::Tanh(h) + 1.0f};
  };
  auto run = [&](int64_t* recorded, std::string* printed) {
    const int64_t before = backends::cuda::GetGraphStats().recorded;
    std::vector<Tensor> out;
    ::testing::internal::CaptureStderr();
    {
      auto exec = graph::NewExec(emu, dense);
      for (int i = 0; i < 3; ++i) out = exec.CallVector(in);
      for (Tensor& t : out) t.HostData();
    }
    *printed = ::testing::internal::GetCapturedStderr();
    *recorded = backends::cuda::GetGraphStats().recorded - before;
    return out;
  };
  int64_t plain_recorded = 0, profiled_recorded = 0;
  std::string plain_printed, profiled_printed;
  const std::vector<Tensor> plain = run(&plain_recorded, &plain_printed);
  EXPECT_GT(plain_recorded, 0);  // the policy records these calls
  std::vector<Tensor> profiled;
  {
    testing::ScopedEnv env("KILN_CUDA_PROFILE", "1");
    profiled = run(&profiled_recorded, &profiled_printed);
  }
  EXPECT_EQ(profiled_recorded, 0);
  EXPECT_NE(profiled_printed.find("\": 3 executions, "), std::string::npos) << profiled_printed;
  ASSERT_EQ(profiled.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    const auto a = profiled[i].Flat<float>(), b = plain[i].Flat<float>();
    EXPECT_EQ(std::vector<float>(a.begin(), a.end()), std::vector<float>(b.begin(), b.end())) << i;
  }
}

// A loop whose trips the argument decides (at most 4), and an If: the
// counts cover the calls that succeeded, trip by trip, and only the branch
// taken.
TEST(CudaProfile, CountsTheTripsOfSuccessfulCallsAndTheBranchesTaken) {
  testing::ScopedEnv env("KILN_CUDA_PROFILE", "1");
  auto emu = Emulator();
  std::string out;
  ::testing::internal::CaptureStderr();
  {
    auto exec = graph::NewExec(emu, [](const std::vector<Node>& p) {
      Node zero = graph::ScalarLike(p[0], 0);
      Node count = graph::While([&](const std::vector<Node>& c) { return graph::LessThan(c[0], p[0]); },
                                [](const std::vector<Node>& c) { return std::vector<Node>{c[0] + 1.0f}; }, {zero},
                                {.max_trip_count = 4})[0];
      Node chosen = graph::If(graph::GreaterThan(p[0], zero), [](const std::vector<Node>& v) { return std::vector<Node>{v[0] * 2.0f}; },
                              [](const std::vector<Node>& v) { return std::vector<Node>{v[0] - 1.0f}; }, {count})[0];
      return std::vector<Node>{chosen};
    });
    EXPECT_EQ(exec.Call(tensors::FromValue(2.0f))[0].Value<float>(), 4.0f);  // 2 trips
    KILN_EXPECT_ERROR(exec.Call(tensors::FromValue(10.0f)), "max_trip_count of 4");
    EXPECT_EQ(exec.Call(tensors::FromValue(3.0f))[0].Value<float>(), 6.0f);  // 3 trips
  }
  out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("\": 2 executions, "), std::string::npos) << out;       // the main function
  EXPECT_NE(out.find("/while_body\": 5 executions, "), std::string::npos) << out;  // 2 + 3 trips
  EXPECT_NE(out.find("/while_cond\": 7 executions, "), std::string::npos) << out;  // 3 + 4 tests
  EXPECT_NE(out.find("If (cuda_profile_test.cc:"), std::string::npos) << out;
  // The then branch ran twice; the else branch never, so it prints nothing.
  size_t tables = 0;
  for (size_t at = out.find(" profile of "); at != std::string::npos; at = out.find(" profile of ", at + 1)) ++tables;
  EXPECT_EQ(tables, 4u) << out;
  EXPECT_EQ(out.find("Sub -> "), std::string::npos) << out;
}

// A loop of more trips than an executable keeps event pairs for (4,096):
// its body's times are read and its events reused as it goes.
TEST(CudaProfile, LongLoopsReuseTheirEvents) {
  testing::ScopedEnv env("KILN_CUDA_PROFILE", "1");
  auto emu = Emulator();
  ::testing::internal::CaptureStderr();
  {
    auto exec = graph::NewExec(emu, [](const std::vector<Node>& p) {
      return graph::ForLoop(5000, [](Node, const std::vector<Node>& c) { return std::vector<Node>{c[0] * 0.5f + 1.0f}; },
                            {p[0]});
    });
    EXPECT_EQ(exec.Call(tensors::FromValue(0.0f))[0].Value<float>(), 2.0f);
  }
  const std::string out = ::testing::internal::GetCapturedStderr();
  // The body's steps all ran inside the loop's span on the stream: their
  // sum, read in two parts, is no more than the span (a pair counted twice
  // would make it more).
  const double body_ms = 5000 * NumberAfter(out, "/while_body\": 5000 executions, ");
  const size_t while_row = out.rfind('\n', out.find("  While (cuda_profile_test.cc:"));
  ASSERT_NE(while_row, std::string::npos) << out;
  const double span_ms = std::strtod(out.c_str() + while_row + 1, nullptr);
  EXPECT_GT(body_ms, 0) << out;
  EXPECT_LE(body_ms, span_ms + 5000 * 0.0005) << out;  // the body's time is printed to 0.001 ms per trip
}

TEST(CudaProfile, SilentWhenZero) {
  testing::ScopedEnv env("KILN_CUDA_PROFILE", "0");
  std::vector<Tensor> results;
  EXPECT_EQ(RunAndCapture(1, &results).find("profile of"), std::string::npos);
}

}  // namespace
}  // namespace kiln
