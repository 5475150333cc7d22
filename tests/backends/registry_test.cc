// Copyright 2026 The Kiln Authors.
// Backend registry: selection by name and environment, user registration,
// and the graph layer's capability check.
#include <cstdlib>
#include <string>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

// A backend that forwards to the CPU backend but claims not to implement Mul
// nor Float64, to exercise the graph layer's capability errors.
class LimitedBackend : public backends::Backend {
 public:
  LimitedBackend() : cpu_(backends::NewWithName("cpu")), caps_(cpu_->GetCapabilities()) {
    caps_.ops[static_cast<size_t>(ir::OpType::kMul)] = false;
    caps_.dtypes[static_cast<size_t>(dtypes::Float64)] = false;
  }
  std::string Name() const override { return "limited"; }
  std::string Description() const override { return "test backend"; }
  const backends::Capabilities& GetCapabilities() const override { return caps_; }
  backends::BufferPtr BufferFromHost(const shapes::Shape& s, const void* d) override { return cpu_->BufferFromHost(s, d); }
  std::unique_ptr<backends::Executable> Compile(std::shared_ptr<const ir::Function> fn) override {
    return cpu_->Compile(std::move(fn));
  }

 private:
  std::shared_ptr<backends::Backend> cpu_;
  backends::Capabilities caps_;
};

// The backend New() picks without KILN_BACKEND: "cuda" where a GPU is present.
std::string BestBackend() {
  const auto names = backends::Available();
  return std::find(names.begin(), names.end(), "cuda") != names.end() ? "cuda" : "cpu";
}

TEST(Registry, EnvironmentPicksTheBackend) {
  testing::ScopedEnv restored("KILN_BACKEND", "");  // as the suite found it afterwards
  ::setenv("KILN_BACKEND", "cpu", 1);
  EXPECT_EQ(backends::New()->Name(), "cpu");
  ::setenv("KILN_BACKEND", "nope", 1);
  // Every available backend is listed ("cuda" too where a GPU is present).
  const std::string listed = testing::QuotedAvailableBackends();
  KILN_EXPECT_ERROR(backends::New(), "unknown backend \"nope\"; available backends: " + listed);
  EXPECT_EQ(listed.rfind("\"cpu\"", 0), 0u) << listed;
  ::setenv("KILN_BACKEND", "", 1);  // empty: as unset
  EXPECT_EQ(backends::New()->Name(), BestBackend());
  ::unsetenv("KILN_BACKEND");
  EXPECT_EQ(backends::New()->Name(), BestBackend());
}

TEST(Registry, UserBackendsRegisterAndUnavailableOnesAreRefused) {
  testing::ScopedEnv unpinned("KILN_BACKEND", "");  // New()'s own pick
  backends::Register({"limited", 1, [] { return true; }, [] { return std::make_shared<LimitedBackend>(); }});
  backends::Register({"absent", 1000, [] { return false; }, [] { return std::make_shared<LimitedBackend>(); }});
  EXPECT_EQ(backends::NewWithName("limited")->Name(), "limited");
  KILN_EXPECT_ERROR(backends::NewWithName("absent"), "backend \"absent\" is not available on this machine");
  // The unavailable high-priority backend is skipped by New(); CPU (and CUDA) outrank "limited".
  EXPECT_EQ(backends::New()->Name(), BestBackend());
  auto names = backends::Available();
  EXPECT_NE(std::find(names.begin(), names.end(), "limited"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "absent"), names.end());
}

TEST(Registry, MissingCapabilitiesAreReportedAtCompile) {
  auto backend = std::make_shared<LimitedBackend>();
  auto mul = graph::NewExec(backend, [](graph::Node a) { return a * a; });
  KILN_EXPECT_ERROR(mul.Call(tensors::FromValue(2.0f)), "backend \"limited\" does not implement op Mul (registry_test.cc:");
  auto add = graph::NewExec(backend, [](graph::Node a) { return a + a; });
  EXPECT_EQ(add.Call(tensors::FromValue(2.0f)).Value<float>(), 4.0f);
  KILN_EXPECT_ERROR(add.Call(tensors::FromValue(2.0)), "backend \"limited\" does not support dtype Float64");
}

// A tensor knows its buffer by the owner's address, so a buffer, and an
// executable that makes buffers, keep their backend alive: no later backend
// can be given that address while they live.
TEST(Registry, BuffersAndExecutablesKeepTheirBackend) {
  auto cpu = backends::NewWithName("cpu");
  std::weak_ptr<backends::Backend> weak = cpu;
  const float values[2] = {1, 2};
  backends::BufferPtr buffer = cpu->BufferFromHost(shapes::Make(dtypes::Float32, 2), values);
  auto g = graph::NewGraph("twice");
  graph::Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 2));
  std::unique_ptr<backends::Executable> exec = cpu->Compile(g->Finish({x * 2.0f}, graph::Loc::current()));
  cpu.reset();
  EXPECT_FALSE(weak.expired());
  buffer.reset();
  EXPECT_FALSE(weak.expired());  // the executable's
  backends::BufferPtr out = exec->Execute({weak.lock()->BufferFromHost(shapes::Make(dtypes::Float32, 2), values)}, {})[0];
  exec.reset();
  EXPECT_FALSE(weak.expired());  // its result's
  float got[2];
  out->CopyToHost(got);
  EXPECT_EQ(got[1], 4);
  out.reset();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace kiln
