// Copyright 2026 The Kiln Authors.
// The CUDA emulator ("cuda-emu", src/backends/cuda/emulator.h) itself: the
// CUDA backend on a host stand-in for the CUDA runtime runs its programs,
// barriers and atomics included, and says clearly when the host compiler
// fails. The op tables run
// on it through KILN_TEST_BACKENDS=cuda-emu (the *_cuda_emu ctest entries).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/emulated_modules.h"
#include "src/backends/cuda/emulator.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

std::shared_ptr<backends::Backend> Emulator() {
  backends::cuda::RegisterCudaEmulatorBackend();
  return backends::NewWithName("cuda-emu");
}

TEST(CudaEmulatorTest, IsRegisteredBelowTheCpu) {
  auto emu = Emulator();
  EXPECT_EQ(emu->Name(), "cuda-emu");
  EXPECT_NE(emu->Description().find("compiled by"), std::string::npos) << emu->Description();
  testing::ScopedEnv unpinned("KILN_BACKEND", "");
  EXPECT_NE(backends::New()->Name(), "cuda-emu");  // never picked by default
}

// Block reductions (__syncthreads between fibers), a product (the reference
// for cuBLASLt), atomic scatters and an in-place update, against the CPU.
TEST(CudaEmulatorTest, ProgramsMatchTheCpu) {
  auto emu = Emulator();
  auto cpu = backends::NewWithName("cpu");
  testing::Rng rng(3);
  Tensor x = testing::Random(shapes::Make(dtypes::Float32, 37, 300), rng, -1, 1);
  Tensor w = testing::Random(shapes::Make(dtypes::Float32, 300, 5), rng, -1, 1);
  Tensor idx = tensors::FromValue(std::vector<int32_t>{4, 0, 4, 2, 4});
  auto fn = [](const std::vector<Node>& p) {
    Node rows = graph::ReduceSum(graph::Exp(p[0]), {1});       // one block per row
    Node cols = graph::ReduceMax(p[0], {0});                   // one thread per column
    Node prod = graph::MatMul(p[0], p[1]);
    ir::ScatterAttrs a;  // out[idx[i]] += 1
    a.inserted_window_dims = {0}, a.scatter_dims_to_operand_dims = {0}, a.index_vector_dim = 1;
    Node hist = graph::ScatterSum(graph::Zeros(p[0].Graph(), shapes::Make(dtypes::Float32, 6)),
                                  graph::Reshape(p[2], {5, 1}), graph::Ones(p[0].Graph(), shapes::Make(dtypes::Float32, 5)), a);
    return std::vector<Node>{rows, cols, prod, hist, p[0] * 2.0f + 1.0f};
  };
  std::vector<Tensor> want = graph::NewExec(cpu, fn).CallVector({x, w, idx});
  std::vector<Tensor> got = graph::NewExec(emu, fn).CallVector({x, w, idx}, {true, false, false});
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(testing::AllClose(got[i], want[i], 1e-5, 1e-5));
  }
  EXPECT_EQ(got[3].Value<std::vector<float>>(), (std::vector<float>{1, 0, 1, 0, 3, 0}));
}

// Without a disk cache a module is compiled into a temporary folder, which
// is gone once the module is loaded.
// Products plus a vector, where the vector is (x W + b) or is not (a
// matrix-vector product plus a vector along m; an rhs with two free axes
// plus a vector along the last) cuBLASLt's bias epilogue, against the CPU.
TEST(CudaEmulatorTest, ProductsPlusVectorsMatchTheCpu) {
  auto emu = Emulator();
  auto cpu = backends::NewWithName("cpu");
  testing::Rng rng(4);
  auto r = [&](std::vector<int64_t> dims) { return testing::Random(shapes::Shape(dtypes::Float32, dims), rng, -1, 1); };
  const std::vector<Tensor> args = {r({4, 6}), r({6, 3}), r({3}), r({6}), r({4}), r({6, 2, 3})};
  auto fn = [](const std::vector<Node>& p) {
    return std::vector<Node>{
        graph::MatMul(p[0], p[1]) + graph::BroadcastInDim(p[2], {4, 3}, {1}),
        graph::Einsum("mk,k->m", p[0], p[3]) + p[4],
        graph::Einsum("bk,knp->bnp", p[0], p[5]) + graph::BroadcastInDim(p[2], {4, 2, 3}, {2})};
  };
  std::vector<Tensor> want = graph::NewExec(cpu, fn).CallVector(args);
  std::vector<Tensor> got = graph::NewExec(emu, fn).CallVector(args);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(testing::AllClose(got[i], want[i], 1e-5, 1e-5));
  }
}

TEST(CudaEmulatorTest, WithoutACacheNothingStaysOnDisk) {
  auto emu = Emulator();
  testing::ScopedEnv cache("KILN_CUDA_CACHE_DIR", "off");
  const float offset = static_cast<float>(::getpid() % 1000);  // a module no earlier run compiled
  auto exec = graph::NewExec(emu, [&](Node a) { return graph::Exp(a) + offset; });
  EXPECT_EQ(exec.Call(tensors::FromValue(std::vector<float>{0, 0})).Value<std::vector<float>>(),
            (std::vector<float>{1 + offset, 1 + offset}));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::temp_directory_path() /
                                       ("kiln-cuda-emu-" + std::to_string(::getpid()))));
}

// ExecuteProgram's argument checks (the CUDA backend's, here on the emulator).
TEST(CudaEmulatorTest, BadArgumentsAreErrors) {
  auto emu = Emulator();
  auto g = graph::NewGraph("twice");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 3));
  auto exec = emu->Compile(g->Finish({x * 2.0f}, graph::Loc::current()));
  const float values[3] = {1, 2, 3};
  auto mine = emu->BufferFromHost(shapes::Make(dtypes::Float32, 3), values);
  auto cpus = backends::NewWithName("cpu")->BufferFromHost(shapes::Make(dtypes::Float32, 3), values);
  auto wrong = emu->BufferFromHost(shapes::Make(dtypes::Float32, 2), values);
  KILN_EXPECT_ERROR(exec->Execute({mine, mine}, {}), "cuda-emu: Execute got 2 arguments for 1 parameters of \"twice\"");
  KILN_EXPECT_ERROR(exec->Execute({wrong}, {}), "cuda-emu: argument 0 of \"twice\" has the wrong shape");
  KILN_EXPECT_ERROR(exec->Execute({cpus}, {}), "cuda-emu: argument 0 of \"twice\" is not a buffer of this device");
  float got[3];
  exec->Execute({mine}, {})[0]->CopyToHost(got);
  EXPECT_EQ(std::vector<float>(got, got + 3), (std::vector<float>{2, 4, 6}));
}

TEST(CudaEmulatorTest, HostCompilerFailureIsAnError) {
  auto emu = Emulator();
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("kiln_cuda_emu_test_" + std::to_string(::getpid()));
  testing::ScopedEnv cache("KILN_CUDA_CACHE_DIR", dir.c_str());
  testing::ScopedEnv cxx("KILN_CUDA_EMULATOR_CXX", "/bin/false");
  auto exec = graph::NewExec(emu, [](Node a) { return graph::Tanh(a) * 3.0f; });
  KILN_EXPECT_ERROR(exec.Call(tensors::FromValue(std::vector<float>{1, 2})),
                    "cuda-emu: the host compiler could not compile a generated module (source kept in " + dir.string());
  std::filesystem::remove_all(dir);
}

// A cached module file that does not load (damaged, or removed by another
// process's trim just before dlopen) is compiled again, and counted in the
// cache's size ledger.
TEST(CudaEmulatorTest, ADamagedCachedModuleIsCompiledAgain) {
  struct Folder {  // removed however the test ends
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("kiln_cuda_emu_damaged_" + std::to_string(::getpid()));
    ~Folder() { std::filesystem::remove_all(path); }
  } dir;
  testing::ScopedEnv cache("KILN_CUDA_CACHE_DIR", dir.path.c_str());
  testing::ScopedEnv limit("KILN_CUDA_CACHE_MAX_SIZE", nullptr);  // the default: the ledger counts
  testing::ScopedEnv nvrtc("KILN_CUDA_EMU_NVRTC", nullptr);       // no cubins in the ledger
  uint64_t modules_bytes = 0;
  // Not an ELF object: compiled before loading; an ELF object cut short:
  // dlopen refuses it, then it is compiled.
  for (const char* damage : {"not a module", "\x7f" "ELF, but cut short"}) {
    SCOPED_TRACE(damage);
    static int run = 0;  // a module this process has not loaded yet, also under --gtest_repeat
    const std::string value = std::to_string(::getpid() % 100000) + "." + std::to_string(++run);
    const std::string source =
        "extern \"C\" __global__ void __launch_bounds__(256) emu_damaged(float* out) {\n"
        "  out[threadIdx.x] = " + value + "f + threadIdx.x;\n}\n";
    const std::string file = backends::cuda::EmulatedModuleFile({source});
    ASSERT_EQ(file.rfind((dir.path / "emulator").string() + "/", 0), 0u) << file;
    std::filesystem::create_directories(dir.path / "emulator");
    std::ofstream(file) << damage;
    const std::vector<std::string> images = backends::cuda::CompileEmulatedModules({source}, "sm_90");
    ASSERT_EQ(images.size(), 1u);
    backends::cuda::EmulatedKernel kernel;
    ASSERT_TRUE(backends::cuda::FindEmulatedKernel(images[0], "emu_damaged", &kernel));
    float out[2] = {0, 0};
    float* out_ptr = out;
    void* args[] = {&out_ptr};
    backends::cuda::RunEmulatedKernel(kernel, args, 1, 2, false, nullptr);
    EXPECT_EQ(out[0], std::stof(value));
    EXPECT_EQ(out[1], std::stof(value) + 1);
    modules_bytes += std::filesystem::file_size(file);
    std::ifstream ledger(dir.path / "kiln-cache-size");
    uint64_t counted = 0;
    EXPECT_TRUE(ledger >> counted);
    EXPECT_EQ(counted, modules_bytes);  // the new modules, not the damaged files
  }
}

// A convolution's forward, input-gradient and filter-gradient calls, with
// cuDNN refusing the filter gradient: the executable is planned again with
// that one off cuDNN (im2col and a product), the other two on it, as on a
// GPU (PlanProgram), and the results are the CPU's.
TEST(CudaEmulatorTest, AConvolutionCudnnRefusesAloneLeavesIt) {
  if (!backends::cuda::HaveEmulatedCudnn()) GTEST_SKIP() << "built without cuDNN's headers";
  auto emu = Emulator();
  auto cpu = backends::NewWithName("cpu");
  testing::Rng rng(9);
  const Tensor x = testing::Random(shapes::Make(dtypes::Float32, 2, 7, 7, 3), rng, -1, 1);
  const Tensor w = testing::Random(shapes::Make(dtypes::Float32, 3, 3, 3, 4), rng, -1, 1);
  auto fn = [](const std::vector<Node>& p) {
    ir::ConvAttrs a;  // NHWC images, HWIO filters
    a.input_batch_axis = 0, a.input_feature_axis = 3, a.input_spatial_axes = {1, 2};
    a.kernel_input_feature_axis = 2, a.kernel_output_feature_axis = 3, a.kernel_spatial_axes = {0, 1};
    a.output_batch_axis = 0, a.output_feature_axis = 3, a.output_spatial_axes = {1, 2};
    a.strides = {2, 2}, a.padding_low = {1, 1}, a.padding_high = {1, 1};
    a.input_dilation = {1, 1}, a.kernel_dilation = {1, 1};
    Node y = graph::ConvGeneral(p[0], p[1], a);
    std::vector<Node> outs = graph::Gradient(graph::ReduceAllSum(graph::Square(y)), {p[0], p[1]});
    outs.push_back(y);
    return outs;
  };
  const std::vector<Tensor> want = graph::NewExec(cpu, fn).CallVector({x, w});
  const backends::cuda::CudnnStats before = backends::cuda::GetCudnnStats();
  backends::cuda::RefuseEmulatedConvolutions(static_cast<int>(backends::cuda::ConvSpec::Kind::kBackwardFilter));
  std::vector<Tensor> got;
  try {
    got = graph::NewExec(emu, fn).CallVector({x, w});
  } catch (...) {
    backends::cuda::RefuseEmulatedConvolutions(-1);
    throw;
  }
  backends::cuda::RefuseEmulatedConvolutions(-1);
  const backends::cuda::CudnnStats after = backends::cuda::GetCudnnStats();
  EXPECT_EQ(after.refused - before.refused, 1);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(testing::AllClose(got[i], want[i], 1e-4, 1e-4)) << i;
}

}  // namespace
}  // namespace kiln
