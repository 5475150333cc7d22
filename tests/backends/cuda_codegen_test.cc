// Copyright 2026 The Kiln Authors.
// The CUDA backend's host side, checked without a GPU: the fusion plan, the
// DotGeneral canonicalization, and NVRTC compiling every kernel generated for
// the op-coverage cases (every op, every dtype it accepts) and for training
// graphs to cubins for sm_80 and sm_90, so a codegen error fails CI on a
// CPU-only machine.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kiln/graph/attention.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/collective.h"
#include "kiln/graph/control_flow.h"
#include "kiln/graph/cumulative.h"
#include "kiln/graph/fft.h"
#include "kiln/ml/layers/layers.h"
#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/nvrtc_compiler.h"
#include "src/backends/cuda/prelude.h"
#include "src/backends/cuda/program_runner.h"
#include "src/backends/cuda/step_labels.h"
#include "tests/testing/op_cases.h"
#include "tests/testing/testing.h"

namespace kiln::backends::cuda {
namespace {

using graph::Node;

// A function traced for the CUDA backend (so gradients use its fused ops).
std::shared_ptr<const ir::Function> Build(const std::function<std::vector<Node>(graph::Graph*)>& fn) {
  static const Capabilities caps = ProgramCapabilities();
  auto g = graph::NewGraph("codegen");
  g->SetTarget(&caps);
  std::vector<Node> outs = fn(g.get());
  return g->Finish(outs, graph::Loc::current());
}

int CountKernels(const Program& p) {
  int n = 0;
  for (const Step& s : p.steps) n += s.kind == StepKind::kKernel || s.kind == StepKind::kUpdate;
  return n;
}

TEST(CudaCodegenTest, ElementwiseChainIsOneKernel) {
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 1024));
    return std::vector<Node>{graph::Tanh(x * 2.0f + 1.0f) * graph::Sigmoid(x)};
  });
  const Program p = GenerateProgram(*fn);
  ASSERT_EQ(CountKernels(p), 1) << ModuleSource(p);
  EXPECT_EQ(p.kernels[0].inputs.size(), 1u);
  ASSERT_EQ(p.kernels[0].elementwise_input.size(), 1u);
  EXPECT_TRUE(p.kernels[0].elementwise_input[0]);  // may be updated in place
  EXPECT_EQ(p.kernels[0].work_items, 1024);
}

// A grid-stride kernel gets enough blocks for its work, at most 8 per
// multiprocessor (32 for a block per item), and no more than the
// multiprocessors hold at once where the kernel's occupancy is known.
TEST(CudaCodegenTest, LaunchesFitOneWaveOfResidentBlocks) {
  KernelSpec big{.work_items = int64_t{1} << 28};
  EXPECT_EQ(LaunchBlocks(big, 132), 132u * 8);
  EXPECT_EQ(LaunchBlocks(big, 132, 0), 132u * 8);  // occupancy unknown
  EXPECT_EQ(LaunchBlocks(big, 132, 6), 132u * 6);
  EXPECT_EQ(LaunchBlocks(big, 132, 16), 132u * 8);
  KernelSpec small{.work_items = 1000};
  EXPECT_EQ(LaunchBlocks(small, 132, 6), 4u);  // ceil(1000 / 256)
  KernelSpec rows{.work_items = 100000, .block_per_item = true};
  EXPECT_EQ(LaunchBlocks(rows, 132), 132u * 32);
  EXPECT_EQ(LaunchBlocks(rows, 132, 3), 132u * 3);
  KernelSpec empty{.work_items = 0};
  EXPECT_EQ(LaunchBlocks(empty, 132, 6), 1u);
}

TEST(CudaCodegenTest, ReductionFusesItsProducer) {
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 64, 300));
    return std::vector<Node>{graph::ReduceSum(graph::Exp(x - 1.0f), {1})};
  });
  const Program p = GenerateProgram(*fn);
  ASSERT_EQ(CountKernels(p), 1) << ModuleSource(p);
  EXPECT_TRUE(p.kernels[0].block_per_item);  // 300 elements per row: a block each
  EXPECT_EQ(p.kernels[0].work_items, 64);
}

TEST(CudaCodegenTest, SharedValueIsMaterializedOnce) {
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 8, 8));
    Node e = graph::Exp(x);
    return std::vector<Node>{graph::ReduceSum(e, {1}), graph::ReduceMax(e, {0})};
  });
  const Program p = GenerateProgram(*fn);
  EXPECT_EQ(CountKernels(p), 3);  // exp, and the two reductions reading it
}

TEST(CudaCodegenTest, MatMulNeedsNoTranspose) {
  auto fn = Build([](graph::Graph* g) {
    Node a = graph::Parameter(g, "a", shapes::Make(dtypes::Float32, 5, 3));
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Float32, 3, 4));
    Node at = graph::Parameter(g, "at", shapes::Make(dtypes::Float32, 3, 5));
    // a·b, and at^T·b written as a contraction over at's axis 0.
    return std::vector<Node>{graph::MatMul(a, b), graph::DotGeneral(at, {0}, {}, b, {0}, {})};
  });
  const Program p = GenerateProgram(*fn);
  EXPECT_EQ(CountKernels(p), 0) << ModuleSource(p);
  ASSERT_EQ(p.matmuls.size(), 2u);
  EXPECT_FALSE(p.matmuls[0].transpose_lhs);
  EXPECT_TRUE(p.matmuls[1].transpose_lhs);
  EXPECT_EQ(p.matmuls[1].m, 5);
  EXPECT_EQ(p.matmuls[1].n, 4);
  EXPECT_EQ(p.matmuls[1].k, 3);
}

TEST(CudaCodegenTest, BatchAxisInTheMiddleIsTransposedFirst) {
  auto fn = Build([](graph::Graph* g) {
    Node a = graph::Parameter(g, "a", shapes::Make(dtypes::Float32, 5, 2, 3));  // [m, batch, k]
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Float32, 2, 3, 4));  // [batch, k, n]
    return std::vector<Node>{graph::DotGeneral(a, {2}, {1}, b, {1}, {0})};
  });
  const Program p = GenerateProgram(*fn);
  EXPECT_EQ(CountKernels(p), 1);  // the transpose of a
  ASSERT_EQ(p.matmuls.size(), 1u);
  EXPECT_EQ(p.matmuls[0].batch, 2);
  EXPECT_EQ(p.matmuls[0].m, 5);
}

TEST(CudaCodegenTest, IntegerDotUsesAGeneratedKernel) {
  auto fn = Build([](graph::Graph* g) {
    Node a = graph::Parameter(g, "a", shapes::Make(dtypes::Int32, 5, 3));
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Int32, 3, 4));
    return std::vector<Node>{graph::MatMul(a, b)};
  });
  const Program p = GenerateProgram(*fn);
  EXPECT_TRUE(p.matmuls.empty());
  EXPECT_EQ(CountKernels(p), 1);
}

// A 3x3 convolution with padding 1 of `layout` ("NHWC" with an HWIO kernel,
// or "NCHW" with OIHW).
ir::ConvAttrs Conv2D(const std::string& layout) {
  ir::ConvAttrs a;
  if (layout == "NHWC") {
    a.input_batch_axis = 0, a.input_feature_axis = 3, a.input_spatial_axes = {1, 2};
    a.kernel_input_feature_axis = 2, a.kernel_output_feature_axis = 3, a.kernel_spatial_axes = {0, 1};
    a.output_batch_axis = 0, a.output_feature_axis = 3, a.output_spatial_axes = {1, 2};
  } else {
    a.input_batch_axis = 0, a.input_feature_axis = 1, a.input_spatial_axes = {2, 3};
    a.kernel_input_feature_axis = 1, a.kernel_output_feature_axis = 0, a.kernel_spatial_axes = {2, 3};
    a.output_batch_axis = 0, a.output_feature_axis = 1, a.output_spatial_axes = {2, 3};
  }
  a.strides = {1, 1}, a.padding_low = {1, 1}, a.padding_high = {1, 1};
  a.input_dilation = {1, 1}, a.kernel_dilation = {1, 1};
  return a;
}

TEST(CudaCodegenTest, ConvolutionsAreMatrixProducts) {
  // NHWC/HWIO: patches, then the product writes the output directly.
  auto nhwc = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 2, 5, 5, 3));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 3, 8));
    return std::vector<Node>{graph::ConvGeneral(x, w, Conv2D("NHWC"))};
  });
  Program p = GenerateProgram(*nhwc);
  EXPECT_EQ(CountKernels(p), 1) << ModuleSource(p);  // im2col
  ASSERT_EQ(p.matmuls.size(), 1u);
  EXPECT_EQ(p.matmuls[0].m, 2 * 5 * 5);
  EXPECT_EQ(p.matmuls[0].k, 3 * 3 * 3);
  EXPECT_EQ(p.matmuls[0].n, 8);
  EXPECT_FALSE(p.matmuls[0].transpose_rhs);
  // NCHW/OIHW: the kernel is read transposed; the product is permuted into NCHW.
  auto nchw = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 2, 3, 5, 5));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 8, 3, 3, 3));
    return std::vector<Node>{graph::ConvGeneral(x, w, Conv2D("NCHW"))};
  });
  p = GenerateProgram(*nchw);
  EXPECT_EQ(CountKernels(p), 2);  // im2col, then the permutation
  ASSERT_EQ(p.matmuls.size(), 1u);
  EXPECT_TRUE(p.matmuls[0].transpose_rhs);
  // Integer convolutions and grouped ones use the direct kernel.
  auto grouped = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 2, 5, 5, 4));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 2, 8));
    ir::ConvAttrs a = Conv2D("NHWC");
    a.feature_group_count = 2;
    return std::vector<Node>{graph::ConvGeneral(x, w, a)};
  });
  p = GenerateProgram(*grouped);
  EXPECT_TRUE(p.matmuls.empty());
  EXPECT_EQ(CountKernels(p), 1);
}

// Appends the program's kernels to `module`, renamed apart.
void Collect(const Program& p, const std::string& prefix, std::string* module, int* count) {
  for (const KernelSpec& k : p.kernels) {
    std::string src = k.source;
    ASSERT_NE(src.find(k.name), std::string::npos);
    // The kernel and the device functions before it (a sort's comparator).
    for (size_t at = src.find("kiln_"); at != std::string::npos; at = src.find("kiln_", at + prefix.size() + 6)) {
      src.insert(at, "k" + prefix);
    }
    *module += "\n" + src;
    ++*count;
  }
}

// Collect for `fn`'s program and those of the sub-functions its While and
// If instructions run (the executable compiles each on its own).
void CollectWithSubfunctions(const ir::Function& fn, const std::string& prefix, std::string* module, int* count) {
  const Program p = GenerateProgram(fn);
  Collect(p, prefix, module, count);
  for (const ir::Instruction& in : p.function.instructions) {
    if (in.op != ir::OpType::kWhile && in.op != ir::OpType::kIf) continue;
    for (int sub : ir::Attr<ir::ControlFlowAttrs>(in).subfunctions) {
      CollectWithSubfunctions(*p.function.subfunctions[static_cast<size_t>(sub)], prefix + "s" + std::to_string(sub) + "_",
                              module, count);
    }
  }
}

// Compiles `p`'s kernels, with the prelude, with NVRTC for each of `archs`.
void ExpectCompiles(const Program& p, std::initializer_list<const char*> archs = {"sm_80", "sm_90"}) {
  std::string module = KernelPrelude();
  if (UsesComplex(p)) module += std::string("\n") + ComplexMathSource();
  if (UsesAttention(p)) module += std::string("\n") + AttentionSource();
  if (UsesVectors(p)) module += std::string("\n") + VectorSource();
  int kernels = 0;
  Collect(p, "p_", &module, &kernels);
  for (const char* arch : archs) {
    SCOPED_TRACE(arch);
    ASSERT_NO_THROW(CompileToCubin(module, arch));
  }
}

// The PTX of the program's kernels for compute_90.
std::string Ptx(const Program& p) { return CompileToPtx(ModuleSource(p), "compute_90"); }

// From kVectorizeMinElements elements, an elementwise kernel reads its
// same-shape inputs and writes its output four elements at a time: the PTX
// has one 16-byte load and store per group of four Float32 values.
TEST(CudaCodegenTest, LargeElementwiseKernelsUseVectorLoads) {
  const int64_t n = kVectorizeMinElements + 3;
  auto chain = [&](dtypes::DType dt, int64_t size) {
    return Build([=](graph::Graph* g) {
      Node x = graph::Parameter(g, "x", shapes::Make(dt, size));
      return std::vector<Node>{graph::Tanh(x * 2.0f + 1.0f) * graph::Sigmoid(x)};
    });
  };
  const Program p = GenerateProgram(*chain(dtypes::Float32, n));
  ASSERT_EQ(p.kernels.size(), 1u);
  const KernelSpec& k = p.kernels[0];
  EXPECT_TRUE(k.vectorized);
  EXPECT_EQ(k.work_items, (n + 3) / 4);  // one thread per group of four
  EXPECT_EQ(k.inputs.size(), 1u);
  EXPECT_TRUE(k.elementwise_input[0]);  // still written over in place
  // Buffers not 16-byte aligned take the one-element loop, as does the tail.
  EXPECT_NE(k.source.find("((size_t)in0 & 15) == 0"), std::string::npos) << k.source;
  EXPECT_NE(k.source.find("i < " + std::to_string(n) + "LL"), std::string::npos) << k.source;
  const std::string ptx = Ptx(p);
  EXPECT_NE(ptx.find("ld.global.nc.v4.f32"), std::string::npos);
  EXPECT_NE(ptx.find("st.global.v4.f32"), std::string::npos);

  // Below the threshold, turned off, or for complex values: one element per thread.
  EXPECT_FALSE(GenerateProgram(*chain(dtypes::Float32, kVectorizeMinElements - 1)).kernels[0].vectorized);
  EXPECT_FALSE(GenerateProgram(*chain(dtypes::Float32, n), {.vectorize_min_elements = 0}).kernels[0].vectorized);
  const Program plain = GenerateProgram(*chain(dtypes::Float32, 1000));
  EXPECT_EQ(Ptx(plain).find(".v4."), std::string::npos);
  auto complex = Build([&](graph::Graph* g) {
    Node z = graph::Parameter(g, "z", shapes::Make(dtypes::Complex64, n));
    return std::vector<Node>{z * z};
  });
  EXPECT_FALSE(GenerateProgram(*complex).kernels[0].vectorized);

  // 16-bit floats load 8 bytes per group, Float64 two 16-byte halves, Bool
  // 4 bytes; a row vector broadcast over the rows is read per element.
  auto mixed = Build([&](graph::Graph* g) {
    Node h = graph::Parameter(g, "h", shapes::Make(dtypes::BFloat16, 4097, 256));
    Node d = graph::Parameter(g, "d", shapes::Make(dtypes::Float64, 4097, 256));
    Node row = graph::Parameter(g, "row", shapes::Make(dtypes::Float64, 256));
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Bool, 4097, 256));
    Node sum = graph::ConvertDType(h, dtypes::Float64) + d + row;
    return std::vector<Node>{graph::Where(b, sum, d)};
  });
  const Program mp = GenerateProgram(*mixed);
  ASSERT_EQ(CountKernels(mp), 1) << ModuleSource(mp);
  const KernelSpec& mk = mp.kernels[0];
  EXPECT_TRUE(mk.vectorized);
  for (const char* vec : {"KVec4<unsigned short, 8>", "KVec4<double, 16>", "KVec4<unsigned char, 4>"}) {
    EXPECT_NE(mk.source.find(vec), std::string::npos) << vec << "\n" << mk.source;
  }
  const std::string mptx = Ptx(mp);
  for (const char* op : {"ld.global.nc.v4.u16", "ld.global.nc.v2.f64", "ld.global.nc.v4.u8", "st.global.v2.f64"}) {
    EXPECT_NE(mptx.find(op), std::string::npos) << op;
  }
  ExpectCompiles(mp);

  // A body longer than 48 lines stays one element per thread (NVRTC time).
  auto longer = Build([&](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, n));
    for (int i = 0; i < 30; ++i) x = graph::Sin(x) * 1.5f;
    return std::vector<Node>{x};
  });
  const Program lp = GenerateProgram(*longer);
  ASSERT_EQ(CountKernels(lp), 1);
  EXPECT_FALSE(lp.kernels[0].vectorized);
}

class ScopedNoDiskCache {
 public:
  ScopedNoDiskCache() : env_("KILN_CUDA_CACHE_DIR", "off") {}

 private:
  testing::ScopedEnv env_;
};

// The program's convolutions of each kind, in step order.
std::vector<ConvSpec> ConvsOf(const Program& p, ConvSpec::Kind kind) {
  std::vector<ConvSpec> out;
  for (const Step& s : p.steps) {
    if (s.kind == StepKind::kConv && p.convs[static_cast<size_t>(s.index)].kind == kind) {
      out.push_back(p.convs[static_cast<size_t>(s.index)]);
    }
  }
  return out;
}

ProgramOptions WithCudnn() {
  ProgramOptions o;
  o.cudnn = true;
  return o;
}

// With cuDNN, each convolution is the cuDNN call that computes it as it
// stands, in cuDNN's axis order: a forward convolution in NHWC (its HWIO
// kernel packed KRSC by one kernel) or NCHW (its OIHW kernel is KCRS
// already: no kernel); autodiff's input gradient is the backward-data call
// of the strided convolution; its kernel gradient the backward-filter call
// with the strides as they were.
TEST(CudaCodegenTest, ConvolutionsOnCudnnAreItsThreeCalls) {
  auto nhwc = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 2, 5, 5, 3));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 3, 8));
    return std::vector<Node>{graph::ConvGeneral(x, w, Conv2D("NHWC"))};
  });
  Program p = GenerateProgram(*nhwc, WithCudnn());
  ASSERT_EQ(p.convs.size(), 1u);
  EXPECT_TRUE(p.matmuls.empty());
  EXPECT_EQ(CountKernels(p), 1) << ModuleSource(p);  // the filter packed KRSC
  ConvSpec c = p.convs[0];
  EXPECT_EQ(c.kind, ConvSpec::Kind::kForward);
  EXPECT_TRUE(c.channels_last);
  EXPECT_EQ(c.x_dims, (std::vector<int64_t>{2, 3, 5, 5}));
  EXPECT_EQ(c.x_strides, (std::vector<int64_t>{75, 1, 15, 3}));
  EXPECT_EQ(c.y_dims, (std::vector<int64_t>{2, 8, 5, 5}));
  EXPECT_EQ(c.w_dims, (std::vector<int64_t>{8, 3, 3, 3}));
  EXPECT_EQ(c.FilterStrides(), (std::vector<int64_t>{27, 1, 9, 3}));
  EXPECT_EQ(c.padding, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(c.a, nhwc->parameters[0]);
  EXPECT_EQ(p.steps.back().kind, StepKind::kConv);
  EXPECT_EQ(p.steps.back().value, nhwc->outputs[0]);
  ExpectCompiles(p);

  auto nchw = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::BFloat16, 2, 3, 5, 5));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::BFloat16, 8, 3, 3, 3));
    return std::vector<Node>{graph::ConvGeneral(x, w, Conv2D("NCHW"))};
  });
  p = GenerateProgram(*nchw, WithCudnn());
  ASSERT_EQ(p.convs.size(), 1u);
  EXPECT_EQ(CountKernels(p), 0);  // OIHW is KCRS
  EXPECT_FALSE(p.convs[0].channels_last);
  EXPECT_EQ(p.convs[0].x_strides, (std::vector<int64_t>{75, 25, 5, 1}));
  EXPECT_EQ(p.convs[0].b, nchw->parameters[1]);
  EXPECT_EQ(p.convs[0].dtype, dtypes::BFloat16);

  // Gradients of a strided, padded NHWC convolution.
  auto grads = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 4, 9, 9, 3));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 3, 6));
    ir::ConvAttrs a = Conv2D("NHWC");
    a.strides = {2, 2};
    Node y = graph::ConvGeneral(x, w, a);  // [4, 5, 5, 6]
    return graph::Gradient(graph::ReduceAllSum(graph::Square(y)), {x, w});
  });
  p = GenerateProgram(*grads, WithCudnn());
  EXPECT_TRUE(p.matmuls.empty());
  ASSERT_EQ(ConvsOf(p, ConvSpec::Kind::kForward).size(), 1u);
  const std::vector<ConvSpec> data = ConvsOf(p, ConvSpec::Kind::kBackwardData);
  const std::vector<ConvSpec> filter = ConvsOf(p, ConvSpec::Kind::kBackwardFilter);
  ASSERT_EQ(data.size(), 1u);
  ASSERT_EQ(filter.size(), 1u);
  // dx = the transpose of the forward convolution: dx [4, 3, 9, 9] from dy [4, 6, 5, 5].
  EXPECT_EQ(data[0].x_dims, (std::vector<int64_t>{4, 3, 9, 9}));
  EXPECT_EQ(data[0].y_dims, (std::vector<int64_t>{4, 6, 5, 5}));
  EXPECT_EQ(data[0].w_dims, (std::vector<int64_t>{6, 3, 3, 3}));
  EXPECT_EQ(data[0].strides, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(data[0].padding, (std::vector<int64_t>{1, 1}));
  EXPECT_TRUE(data[0].channels_last);
  // dw [6, 3, 3, 3] (KRSC, then unpacked into HWIO) from x and dy.
  EXPECT_EQ(filter[0].x_dims, (std::vector<int64_t>{4, 3, 9, 9}));
  EXPECT_EQ(filter[0].y_dims, (std::vector<int64_t>{4, 6, 5, 5}));
  EXPECT_EQ(filter[0].w_dims, (std::vector<int64_t>{6, 3, 3, 3}));
  EXPECT_EQ(filter[0].strides, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(filter[0].dilation, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(filter[0].padding, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(filter[0].a, grads->parameters[0]);
  ExpectCompiles(p);
  // An even extent: the input gradient's padding is (1, 2), cuDNN's 1 with
  // the formula giving the same 8 positions.
  auto even = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 4, 8, 8, 3));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 3, 6));
    ir::ConvAttrs a = Conv2D("NHWC");
    a.strides = {2, 2};
    return graph::Gradient(graph::ReduceAllSum(graph::Square(graph::ConvGeneral(x, w, a))), {x});
  });
  p = GenerateProgram(*even, WithCudnn());
  const std::vector<ConvSpec> even_data = ConvsOf(p, ConvSpec::Kind::kBackwardData);
  ASSERT_EQ(even_data.size(), 1u);
  EXPECT_EQ(even_data[0].x_dims, (std::vector<int64_t>{4, 3, 8, 8}));
  EXPECT_EQ(even_data[0].y_dims, (std::vector<int64_t>{4, 6, 4, 4}));
  EXPECT_EQ(even_data[0].padding, (std::vector<int64_t>{1, 1}));

  // 1-D: a leading unit axis.
  auto conv1d = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float16, 2, 10, 4));  // NWC
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float16, 3, 4, 5));   // WIO
    ir::ConvAttrs a;
    a.input_batch_axis = 0, a.input_feature_axis = 2, a.input_spatial_axes = {1};
    a.kernel_input_feature_axis = 1, a.kernel_output_feature_axis = 2, a.kernel_spatial_axes = {0};
    a.output_batch_axis = 0, a.output_feature_axis = 2, a.output_spatial_axes = {1};
    a.kernel_dilation = {2};
    return std::vector<Node>{graph::ConvGeneral(x, w, a)};
  });
  p = GenerateProgram(*conv1d, WithCudnn());
  ASSERT_EQ(p.convs.size(), 1u);
  EXPECT_EQ(p.convs[0].x_dims, (std::vector<int64_t>{2, 4, 1, 10}));
  EXPECT_EQ(p.convs[0].y_dims, (std::vector<int64_t>{2, 5, 1, 6}));
  EXPECT_EQ(p.convs[0].dilation, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(p.convs[0].padding, (std::vector<int64_t>{0, 0}));
}

// What cuDNN cannot take stays off it: Float64, batch groups, images of
// two layouts, padding that makes the output's extent differ from cuDNN's
// symmetric formula, no spatial axes; and everything with cuDNN off.
// Each cuDNN call names its ConvGeneral; a convolution in
// ProgramOptions::cudnn_refused (one cuDNN has no algorithm for) falls back
// alone, and the others stay cuDNN calls.
TEST(CudaCodegenTest, ARefusedConvolutionAloneLeavesCudnn) {
  auto grads = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 4, 9, 9, 3));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 3, 6));
    ir::ConvAttrs a = Conv2D("NHWC");
    a.strides = {2, 2};
    return graph::Gradient(graph::ReduceAllSum(graph::Square(graph::ConvGeneral(x, w, a))), {x, w});
  });
  ProgramOptions options = WithCudnn();
  const Program all = GenerateProgram(*grads, options);
  ASSERT_EQ(all.convs.size(), 3u);
  EXPECT_TRUE(all.matmuls.empty());
  std::vector<int> ids;
  for (const ConvSpec& c : all.convs) {
    ASSERT_GE(c.id, 0);
    EXPECT_EQ(all.function.instructions[static_cast<size_t>(c.id)].op, ir::OpType::kConvGeneral);
    ids.push_back(c.id);
  }
  EXPECT_EQ(std::set<int>(ids.begin(), ids.end()).size(), 3u);
  const ConvSpec refused = ConvsOf(all, ConvSpec::Kind::kBackwardData)[0];
  options.cudnn_refused = {refused.id};
  const Program rest = GenerateProgram(*grads, options);
  ASSERT_EQ(rest.convs.size(), 2u);
  for (const ConvSpec& c : rest.convs) EXPECT_NE(c.id, refused.id);
  EXPECT_TRUE(ConvsOf(rest, ConvSpec::Kind::kBackwardData).empty());
  EXPECT_EQ(ConvsOf(rest, ConvSpec::Kind::kForward).size(), 1u);
  EXPECT_EQ(ConvsOf(rest, ConvSpec::Kind::kBackwardFilter).size(), 1u);
  EXPECT_FALSE(rest.matmuls.empty());  // the input gradient as im2col and a product
  ExpectCompiles(rest, {"sm_90"});
  options.cudnn_refused = ids;
  EXPECT_TRUE(GenerateProgram(*grads, options).convs.empty());
}

TEST(CudaCodegenTest, ConvolutionsCudnnCannotTakeUseTheOtherPaths) {
  const auto conv = [](dtypes::DType dt, const std::function<void(ir::ConvAttrs&)>& edit) {
    return Build([=](graph::Graph* g) {
      Node x = graph::Parameter(g, "x", shapes::Make(dt, 4, 6, 6, 4));
      Node w = graph::Parameter(g, "w", shapes::Make(dt, 2, 2, 4, 4));
      ir::ConvAttrs a = Conv2D("NHWC");
      a.padding_low = {0, 0}, a.padding_high = {0, 0};
      edit(a);
      return std::vector<Node>{graph::ConvGeneral(x, w, a)};
    });
  };
  const auto none = [](ir::ConvAttrs&) {};
  EXPECT_EQ(GenerateProgram(*conv(dtypes::Float32, none), WithCudnn()).convs.size(), 1u);
  EXPECT_TRUE(GenerateProgram(*conv(dtypes::Float32, none)).convs.empty());  // cuDNN off
  EXPECT_TRUE(GenerateProgram(*conv(dtypes::Float64, none), WithCudnn()).convs.empty());
  EXPECT_TRUE(GenerateProgram(*conv(dtypes::Float32, [](ir::ConvAttrs& a) { a.batch_group_count = 2; }), WithCudnn())
                  .convs.empty());
  // Output NCHW from an NHWC input.
  EXPECT_TRUE(GenerateProgram(*conv(dtypes::Float32,
                                    [](ir::ConvAttrs& a) {
                                      a.output_feature_axis = 1;
                                      a.output_spatial_axes = {2, 3};
                                    }),
                              WithCudnn())
                  .convs.empty());
  // A 2x2 kernel with padding (0, 1) keeps 6 positions; cuDNN's symmetric
  // padding would give 5 or 7.
  const Program asymmetric =
      GenerateProgram(*conv(dtypes::Float32, [](ir::ConvAttrs& a) { a.padding_high = {1, 1}; }), WithCudnn());
  EXPECT_TRUE(asymmetric.convs.empty());
  EXPECT_EQ(asymmetric.matmuls.size(), 1u);  // im2col instead
  // Stride 4 with padding (1, 0): 2 positions, as with cuDNN's (1, 1).
  EXPECT_EQ(GenerateProgram(*conv(dtypes::Float32,
                                  [](ir::ConvAttrs& a) {
                                    a.strides = {4, 4};
                                    a.padding_low = {1, 1};
                                    a.padding_high = {0, 0};
                                  }),
                            WithCudnn())
                .convs.size(),
            1u);
  auto no_spatial = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 3, 4));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 4, 5));
    ir::ConvAttrs a;
    a.input_batch_axis = 0, a.input_feature_axis = 1;
    a.kernel_input_feature_axis = 0, a.kernel_output_feature_axis = 1;
    a.output_batch_axis = 0, a.output_feature_axis = 1;
    return std::vector<Node>{graph::ConvGeneral(x, w, a)};
  });
  EXPECT_TRUE(GenerateProgram(*no_spatial, WithCudnn()).convs.empty());
}

TEST(CudaCodegenTest, ConvSpecConsistencyIsCudnnsForwardFormula) {
  ConvSpec s;
  s.x_dims = {2, 4, 7, 7};
  s.w_dims = {6, 4, 3, 3};
  s.y_dims = {2, 6, 4, 4};
  s.padding = {1, 1};
  s.strides = {2, 2};
  s.dilation = {1, 1};
  EXPECT_TRUE(ConvSpecIsConsistent(s));  // (7 + 2 - 3) / 2 + 1 = 4
  ConvSpec t = s;
  t.y_dims = {2, 6, 5, 4};
  EXPECT_FALSE(ConvSpecIsConsistent(t));
  t = s;
  t.padding = {-1, 1};
  EXPECT_FALSE(ConvSpecIsConsistent(t));
  t = s;
  t.groups = 2;  // 4 input features = 2 per group x 2 groups, not 4 x 2
  EXPECT_FALSE(ConvSpecIsConsistent(t));
  t.w_dims = {6, 2, 3, 3};
  EXPECT_TRUE(ConvSpecIsConsistent(t));
  t = s;
  t.x_dims = {2, 4, 7};  // one spatial axis: cuDNN needs two
  t.y_dims = {2, 6, 4};
  t.w_dims = {6, 4, 3};
  t.padding = t.strides = t.dilation = {1};
  EXPECT_FALSE(ConvSpecIsConsistent(t));
}

// x W + b is one cuBLASLt call with the bias epilogue: no kernel for the
// addition, the vector read by the product step; a computed vector is
// materialized first. Not for a product read elsewhere, Float64, or with
// epilogues off.
TEST(CudaCodegenTest, DenseBiasIsTheProductsEpilogue) {
  auto dense = [](dtypes::DType dt, bool share_product, bool computed_bias) {
    return Build([=](graph::Graph* g) {
      Node x = graph::Parameter(g, "x", shapes::Make(dt, 2, 5, 7));
      Node w = graph::Parameter(g, "w", shapes::Make(dt, 7, 3));
      Node b = graph::Parameter(g, "b", shapes::Make(dt, 3));
      if (computed_bias) b = graph::ReduceSum(graph::Parameter(g, "z", shapes::Make(dt, 4, 3)), {0});
      Node d = graph::Einsum("btd,dn->btn", x, w);
      std::vector<Node> outs = {d + graph::BroadcastInDim(b, {2, 5, 3}, {2})};
      if (share_product) outs.push_back(d * 2.0f);
      return outs;
    });
  };
  Program p = GenerateProgram(*dense(dtypes::Float32, false, false));
  ASSERT_EQ(p.matmuls.size(), 1u);
  const ir::Function& f = p.function;
  ASSERT_GE(p.matmuls[0].bias, 0);
  EXPECT_EQ(f.instructions[static_cast<size_t>(p.matmuls[0].bias)].op, ir::OpType::kParameter);
  EXPECT_EQ(f.instructions[static_cast<size_t>(p.matmuls[0].bias)].shape, shapes::Make(dtypes::Float32, 3));
  EXPECT_EQ(CountKernels(p), 0) << ModuleSource(p);
  // The product step writes the output (the Add) itself.
  bool writes_output = false;
  for (const Step& s : p.steps) writes_output |= s.kind == StepKind::kMatmul && s.value == f.outputs[0];
  EXPECT_TRUE(writes_output);
  EXPECT_EQ(StepReads(p, p.steps.back()).size(), 3u);  // lhs, rhs and the vector
  // A computed vector: its reduction kernel, then the product.
  p = GenerateProgram(*dense(dtypes::BFloat16, false, true));
  ASSERT_EQ(p.matmuls.size(), 1u);
  EXPECT_GE(p.matmuls[0].bias, 0);
  EXPECT_EQ(CountKernels(p), 1) << ModuleSource(p);
  ExpectCompiles(p, {"sm_90"});
  // No epilogue: the product is read twice; Float64; epilogues off.
  EXPECT_EQ(GenerateProgram(*dense(dtypes::Float32, true, false)).matmuls[0].bias, -1);
  EXPECT_EQ(GenerateProgram(*dense(dtypes::Float64, false, false)).matmuls[0].bias, -1);
  p = GenerateProgram(*dense(dtypes::Float32, false, false), {.epilogues = false});
  EXPECT_EQ(p.matmuls[0].bias, -1);
  EXPECT_EQ(CountKernels(p), 1);
  // cuBLASLt adds the vector along the rhs's free elements (n): not for a
  // matrix-vector product (n = 1, the vector along m), nor for an rhs with
  // two free axes (n = 2 x 3, a vector of 3).
  auto matvec = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 5, 7));
    Node v = graph::Parameter(g, "v", shapes::Make(dtypes::Float32, 7));
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Float32, 5));
    return std::vector<Node>{graph::Einsum("mk,k->m", x, v) + b};
  });
  p = GenerateProgram(*matvec);
  ASSERT_EQ(p.matmuls.size(), 1u);
  EXPECT_EQ(p.matmuls[0].n, 1);
  EXPECT_EQ(p.matmuls[0].bias, -1);
  auto two_free = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 4, 6));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 6, 2, 3));
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Float32, 3));
    return std::vector<Node>{graph::Einsum("bk,knp->bnp", x, w) + graph::BroadcastInDim(b, {4, 2, 3}, {2})};
  });
  p = GenerateProgram(*two_free);
  ASSERT_EQ(p.matmuls.size(), 1u);
  EXPECT_EQ(p.matmuls[0].n, 6);
  EXPECT_EQ(p.matmuls[0].bias, -1);
}

// Every op of the coverage table, for every dtype the graph layer accepts,
// generates kernels that NVRTC compiles for Ampere and Hopper.
TEST(CudaCodegenTest, EveryOpCaseCompilesWithNvrtc) {
  ScopedNoDiskCache no_cache;
  // One module for all, with the complex math and the attention functions
  // (which modules with complex values or attention include).
  std::string module = KernelPrelude() + std::string("\n") + ComplexMathSource() + "\n" + AttentionSource();
  int kernels = 0, cases = 0, complex_cases = 0;
  for (const testing::OpCase& c : testing::OpCases()) {
    // The collectives are not on the CUDA backend yet (its capabilities say
    // so).
    if (!ProgramCapabilities().SupportsOp(c.op)) continue;
    for (dtypes::DType dt : dtypes::kAll) {
      std::shared_ptr<const ir::Function> fn;
      try {
        fn = Build([&](graph::Graph* g) { return std::vector<Node>{c.build(g, dt)}; });
      } catch (const Error&) {
        continue;  // the graph layer rejects this dtype for this op
      }
      ++cases;
      complex_cases += dtypes::IsComplex(dt);
      const std::string prefix = std::to_string(cases) + "_c";
      try {
        CollectWithSubfunctions(*fn, prefix, &module, &kernels);
      } catch (const Error& e) {
        ADD_FAILURE() << ir::OpName(c.op) << " " << dtypes::Name(dt) << ": " << e.what();
      }
    }
  }
  EXPECT_GT(cases, 500);
  EXPECT_GT(complex_cases, 60);
  EXPECT_GT(kernels, 500);
  for (const char* arch : {"sm_80", "sm_90"}) {
    SCOPED_TRACE(arch);
    std::string cubin;
    ASSERT_NO_THROW(cubin = CompileToCubin(module, arch));
    EXPECT_EQ(cubin.compare(0, 4, "\x7f" "ELF"), 0);
  }
}

// A training step (forward, loss, gradients, an update) of an MLP and a CNN.
TEST(CudaCodegenTest, TrainingGraphsCompileWithNvrtc) {
  ScopedNoDiskCache no_cache;
  std::string module = KernelPrelude();
  int kernels = 0;
  for (dtypes::DType dt : {dtypes::Float32, dtypes::BFloat16, dtypes::Float64}) {
    auto fn = Build([&](graph::Graph* g) {
      Node x = graph::Parameter(g, "x", shapes::Make(dt, 16, 8, 8, 1));  // NHWC
      Node w = graph::Parameter(g, "w", shapes::Make(dt, 3, 3, 1, 4));   // HWIO
      Node w2 = graph::Parameter(g, "w2", shapes::Make(dt, 4 * 4 * 4, 10));
      ir::ConvAttrs a;
      a.input_batch_axis = 0, a.input_feature_axis = 3, a.input_spatial_axes = {1, 2};
      a.kernel_input_feature_axis = 2, a.kernel_output_feature_axis = 3, a.kernel_spatial_axes = {0, 1};
      a.output_batch_axis = 0, a.output_feature_axis = 3, a.output_spatial_axes = {1, 2};
      a.strides = {1, 1}, a.padding_low = {1, 1}, a.padding_high = {1, 1};
      a.input_dilation = {1, 1}, a.kernel_dilation = {1, 1};
      Node h = graph::Relu(graph::ConvGeneral(x, w, a));
      h = ::kiln::ml::layers::MaxPool(h, {.window = {2, 2}});
      Node logits = graph::MatMul(graph::Reshape(h, {16, 64}), w2);
      Node loss = graph::ReduceAllMean(graph::LogSoftmax(logits));
      std::vector<Node> grads = graph::Gradient(loss, {w, w2});
      return std::vector<Node>{loss, w - grads[0] * 0.1f, w2 - grads[1] * 0.1f};
    });
    Collect(GenerateProgram(*fn), std::string(dtypes::Name(dt)) + "_", &module, &kernels);
    // With the convolutions on cuDNN: the kernels packing and unpacking filters.
    Collect(GenerateProgram(*fn, WithCudnn()), std::string(dtypes::Name(dt)) + "_cudnn_", &module, &kernels);
  }
  EXPECT_GT(kernels, 10);
  for (const char* arch : {"sm_80", "sm_90"}) {
    SCOPED_TRACE(arch);
    ASSERT_NO_THROW(CompileToCubin(module, arch));
  }
}

// Cumulative windows (CumSum and friends, and the SelectAndScatter of
// CumMax's gradient) are one O(n) scan per lane, not the generic window loop,
// in every direction; NVRTC compiles the scans.
TEST(CudaCodegenTest, CumulativeWindowsAreScans) {
  ScopedNoDiskCache no_cache;
  std::string module = KernelPrelude();
  int kernels = 0, variant = 0;
  for (dtypes::DType dt : {dtypes::Float32, dtypes::BFloat16, dtypes::Float64, dtypes::Int32}) {
    for (bool exclusive : {false, true}) {
      for (bool reverse : {false, true}) {
        SCOPED_TRACE(std::string(dtypes::Name(dt)) + (exclusive ? " exclusive" : "") + (reverse ? " reverse" : ""));
        const graph::CumulativeOptions o{.exclusive = exclusive, .reverse = reverse};
        auto fn = Build([&](graph::Graph* g) {
          Node x = graph::Parameter(g, "x", shapes::Make(dt, 3, 50, 4));
          std::vector<Node> outs{graph::CumSum(x, 1, o), graph::CumProd(x, 2, o), graph::CumMin(x, 0, o)};
          if (dtypes::IsFloat(dt)) outs.push_back(graph::Gradient(graph::ReduceAllSum(graph::CumMax(x, 1, o)), {x})[0]);
          return outs;
        });
        const Program p = GenerateProgram(*fn);
        int scans = 0, selects = 0, windows = 0;
        for (const KernelSpec& k : p.kernels) {
          scans += k.name.find("_scan_") != std::string::npos && k.name.find("select") == std::string::npos;
          selects += k.name.find("_scan_select_") != std::string::npos;
          windows += k.name.find("_window_") != std::string::npos || k.name.find("_select_scatter_") != std::string::npos;
        }
        EXPECT_EQ(windows, 0);
        EXPECT_GE(scans, 3);
        EXPECT_EQ(selects, dtypes::IsFloat(dt) ? 1 : 0);
        Collect(p, "scan" + std::to_string(variant++) + "_", &module, &kernels);
      }
    }
  }
  for (const char* arch : {"sm_80", "sm_90"}) {
    SCOPED_TRACE(arch);
    ASSERT_NO_THROW(CompileToCubin(module, arch));
  }
}

// Sort: chunks of up to 2048 positions sorted in shared memory, then one
// merge pass per doubling of the sorted runs; the sorted values are gathered
// by the permutation inside their consumers' kernels (TopK's slice reads
// only k positions). A comparator becomes a device function.
TEST(CudaCodegenTest, SortsAreChunksAndMergePasses) {
  ScopedNoDiskCache no_cache;
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 2, 70001));
    Node y = graph::Parameter(g, "y", shapes::Make(dtypes::Float64, 5000, 3));
    auto top = graph::TopK(graph::Parameter(g, "z", shapes::Make(dtypes::BFloat16, 4, 10)), 3);
    auto by_abs = graph::SortWithComparator({y}, 0, [](const std::vector<Node>& l, const std::vector<Node>& r) {
      return graph::LessThan(graph::Abs(l[0]), graph::Abs(r[0]));
    });
    return std::vector<Node>{graph::Sort(x, 1), top.values, top.indices, by_abs[0]};
  });
  const Program p = GenerateProgram(*fn);
  std::vector<int64_t> chunk_items, merge_items;
  int fused = 0, comparators = 0;
  for (const KernelSpec& k : p.kernels) {
    if (k.name.find("_sort_chunks_") != std::string::npos) {
      chunk_items.push_back(k.work_items);
      EXPECT_TRUE(k.block_per_item);
    }
    if (k.name.find("_sort_merge_") != std::string::npos) merge_items.push_back(k.work_items);
    fused += k.name.find("_fused_") != std::string::npos;
    comparators += k.source.find("__device__ __forceinline__ bool kiln_cmp_") != std::string::npos;
  }
  // Blocks: TopK's 4 lanes of 16 in one; y: 3 lanes x 3 chunks, then 2
  // passes; x: 2 lanes x 35 chunks, then 6 passes (runs of 2048 to 131072).
  std::sort(chunk_items.begin(), chunk_items.end());
  std::sort(merge_items.begin(), merge_items.end());
  EXPECT_EQ(chunk_items, (std::vector<int64_t>{1, 9, 70}));
  EXPECT_EQ(merge_items, (std::vector<int64_t>{15000, 15000, 140002, 140002, 140002, 140002, 140002, 140002}));
  EXPECT_EQ(comparators, 3);
  EXPECT_EQ(fused, 4);  // one kernel per output: the gathers by the permutation
  std::vector<size_t> top_inputs;
  for (const KernelSpec& k : p.kernels) {
    if (k.name.find("_fused_") != std::string::npos && k.work_items == 12) top_inputs.push_back(k.inputs.size());
  }
  // TopK's values read z and the permutation; its indices (a sorted iota)
  // are the permutation itself.
  std::sort(top_inputs.begin(), top_inputs.end());
  EXPECT_EQ(top_inputs, (std::vector<size_t>{1, 2}));
  ExpectCompiles(p);
}

// Attention is one kernel and its gradient four (row statistics, dq, dk,
// dv), each a block per row block of a head; the tiles shrink with the head
// length so the staged rows fit in 48 KiB of shared memory, and a head too
// long for it is read in place (no staging). ptxas checks the sizes.
TEST(CudaCodegenTest, AttentionIsFusedKernelsSizedToSharedMemory) {
  ScopedNoDiskCache no_cache;
  auto attention = [](dtypes::DType dt, int64_t d) {
    return Build([=](graph::Graph* g) {
      Node q = graph::Parameter(g, "q", shapes::Shape(dt, {2, 8, 100, d}));
      Node k = graph::Parameter(g, "k", shapes::Shape(dt, {2, 4, 300, d}));
      Node v = graph::Parameter(g, "v", shapes::Shape(dt, {2, 4, 300, d}));
      Node out = graph::Attention(q, k, v, {}, {.scale = 0.125, .causal = true});
      std::vector<Node> grads = graph::Gradient(graph::ReduceAllSum(graph::Square(out)), {q, k, v});
      return std::vector<Node>{out, grads[0], grads[1], grads[2]};
    });
  };
  // kernel kind -> the call's template arguments
  auto calls = [](const Program& p) {
    std::map<std::string, std::string> c;
    for (const KernelSpec& k : p.kernels) {
      const size_t call = k.source.find("kAttention");
      if (call == std::string::npos) continue;
      EXPECT_TRUE(k.block_per_item) << k.name;
      const std::string kind = k.name.substr(0, k.name.rfind('_'));
      c[kind] = k.source.substr(call, k.source.find('(', call) - call);
    }
    return c;
  };
  const Program f32 = GenerateProgram(*attention(dtypes::Float32, 64));
  EXPECT_EQ(calls(f32), (std::map<std::string, std::string>{
                            {"kiln_attention", "kAttentionForward<float, 64, 64, 32, true>"},
                            {"kiln_attention_stats", "kAttentionStats<float, 64, 64, 32, true>"},
                            {"kiln_attention_dq", "kAttentionGradQ<float, 64, 32, 32, true>"},
                            {"kiln_attention_dk", "kAttentionGradKV<float, 64, 32, 32, true, true>"},
                            {"kiln_attention_dv", "kAttentionGradKV<float, 64, 64, 32, true, false>"}}));
  std::map<std::string, int64_t> blocks;
  for (const KernelSpec& k : f32.kernels) blocks[k.name.substr(0, k.name.rfind('_'))] = k.work_items;
  EXPECT_EQ(blocks.at("kiln_attention"), 2 * 8 * 2);         // 2 blocks of 64 query rows per head
  EXPECT_EQ(blocks.at("kiln_attention_dq"), 2 * 8 * 4);      // 4 blocks of 32 query rows
  EXPECT_EQ(blocks.at("kiln_attention_dk"), 2 * 4 * 10);     // 10 blocks of 32 keys per kv head
  ExpectCompiles(f32);
  const Program f64 = GenerateProgram(*attention(dtypes::Float64, 128));
  EXPECT_EQ(calls(f64).at("kiln_attention"), "kAttentionForward<double, 128, 8, 16, true>");
  EXPECT_EQ(calls(f64).at("kiln_attention_dk"), "kAttentionGradKV<double, 128, 8, 8, true, true>");
  ExpectCompiles(f64, {"sm_90"});
  const Program long_head = GenerateProgram(*attention(dtypes::Float32, 520));
  EXPECT_EQ(calls(long_head).at("kiln_attention"), "kAttentionForward<float, 520, 32, 32, false>");
  ExpectCompiles(long_head, {"sm_90"});
}

// Attention and AttentionGrad built by hand re-check what the graph layer
// guarantees, as the CPU kernels do (tests/graph/attention_test.cc).
TEST(CudaCodegenTest, AttentionRejectsInconsistentHandBuiltIr) {
  auto build = [](std::vector<shapes::Shape> params, ir::OpType op, std::vector<int> operands, shapes::Shape out) {
    ir::Function fn;
    fn.name = "hand";
    for (size_t i = 0; i < params.size(); ++i) {
      fn.instructions.push_back({ir::OpType::kParameter, {}, params[i], ir::ParameterAttrs{static_cast<int>(i), "p"}, ""});
      fn.parameters.push_back(static_cast<int>(i));
    }
    const int id = static_cast<int>(fn.instructions.size());
    fn.instructions.push_back({op, std::move(operands), op == ir::OpType::kAttention ? out : ir::TupleShape(),
                               ir::AttentionAttrs{.scale = 1}, "hand.cc:1"});
    if (op == ir::OpType::kAttentionGrad) {
      fn.instructions.push_back({ir::OpType::kGetTupleElement, {id}, out, ir::TupleIndexAttrs{0}, "hand.cc:2"});
    }
    fn.outputs = {static_cast<int>(fn.instructions.size()) - 1};
    return fn;
  };
  const shapes::Shape q3 = shapes::Make(dtypes::Float32, 1, 3, 2, 4), k2 = shapes::Make(dtypes::Float32, 1, 2, 5, 4);
  const shapes::Shape q2 = shapes::Make(dtypes::Float32, 1, 2, 2, 4);
  KILN_EXPECT_ERROR(GenerateProgram(build({q3, k2}, ir::OpType::kAttention, {0, 1, 1}, q3)),
                    "cuda: Attention of q Float32[1, 3, 2, 4], k Float32[1, 2, 5, 4]: inconsistent shapes");
  KILN_EXPECT_ERROR(GenerateProgram(build({q2, k2, shapes::Make(dtypes::Bool, 1, 3, 2, 6)}, ir::OpType::kAttention,
                                          {0, 1, 1, 2}, q2)),
                    "cuda: Attention mask Bool[1, 3, 2, 6] does not broadcast to the scores of q Float32[1, 2, 2, 4]");
  KILN_EXPECT_ERROR(GenerateProgram(build({q2, k2}, ir::OpType::kAttention, {0, 1, 1}, k2)),
                    "cuda: Attention of q Float32[1, 2, 2, 4] cannot give Float32[1, 2, 5, 4]");
  KILN_EXPECT_ERROR(GenerateProgram(build({q2, k2}, ir::OpType::kAttentionGrad, {0, 1, 1, 0, 1}, q2)),
                    "cuda: AttentionGrad of q Float32[1, 2, 2, 4]: out Float32[1, 2, 2, 4] and d_out "
                    "Float32[1, 2, 5, 4] must have q's shape");
}

// A Collective is a step of the distributed engine on its output's buffer:
// AllReduce after a kernel copying the operand there (its producers fused),
// AllGather reading its operand into a buffer a kernel-less step allocates.
TEST(CudaCodegenTest, CollectivesAreEngineStepsOnTheirBuffers) {
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 6));
    return std::vector<Node>{graph::AllReduce(x * 2.0f, ir::ReduceOp::kMax), graph::AllGather(x)};
  });
  const Program p = GenerateProgram(*fn);
  ASSERT_EQ(p.library_calls.size(), 2u);
  const LibraryCall &reduce = p.library_calls[0], &gather = p.library_calls[1];
  EXPECT_EQ(reduce.kind, LibraryCall::Kind::kCollective);
  EXPECT_EQ(reduce.collective.kind, ir::CollectiveKind::kAllReduce);
  EXPECT_EQ(reduce.collective.reduce, ir::ReduceOp::kMax);
  EXPECT_TRUE(reduce.inputs.empty());  // in place
  EXPECT_EQ(gather.collective.kind, ir::CollectiveKind::kAllGather);
  EXPECT_EQ(gather.inputs, (std::vector<int>{fn->parameters[0]}));
  EXPECT_EQ(gather.in_count, 6);
  EXPECT_EQ(gather.out_count, 6);  // a world of one
  std::vector<std::string> kernels;  // the kernel before each library step
  for (size_t i = 1; i < p.steps.size(); ++i) {
    if (p.steps[i].kind != StepKind::kLibrary) continue;
    ASSERT_EQ(p.steps[i - 1].kind, StepKind::kKernel);
    ASSERT_EQ(p.steps[i - 1].value, p.steps[i].value);
    const KernelSpec& k = p.kernels[static_cast<size_t>(p.steps[i - 1].index)];
    kernels.push_back(k.name.substr(0, k.name.rfind('_')) + ":" + std::to_string(k.work_items));
  }
  EXPECT_EQ(kernels, (std::vector<std::string>{"kiln_copy:6", "kiln_empty:0"}));
  ExpectCompiles(p, {"sm_90"});

  // Built by hand with counts that do not match the world.
  ir::Function hand;
  hand.name = "hand";
  hand.instructions.push_back({ir::OpType::kParameter, {}, shapes::Make(dtypes::Float32, 3), ir::ParameterAttrs{0, "x"}, ""});
  hand.instructions.push_back({ir::OpType::kCollective, {0}, shapes::Make(dtypes::Float32, 5),
                               ir::CollectiveAttrs{.kind = ir::CollectiveKind::kAllGather, .world_size = 2}, "hand.cc:1"});
  hand.parameters = {0};
  hand.outputs = {1};
  KILN_EXPECT_ERROR(GenerateProgram(hand), "cuda: Collective has inconsistent shapes Float32[3] -> Float32[5]");
}

// Positions along a sorted axis are Int32: a longer axis is an error
// naming the op (planned only: nothing is allocated).
TEST(CudaCodegenTest, SortingMoreThanInt32PositionsIsAnError) {
  auto fn = Build([](graph::Graph* g) {
    return std::vector<Node>{graph::Sort(graph::Parameter(g, "x", shapes::Make(dtypes::Uint8, int64_t{1} << 31)), 0)};
  });
  KILN_EXPECT_ERROR(GenerateProgram(*fn), "cuda: Sort sorts more than 2^31 - 1 elements per lane");
}

// TopK reads a prefix of the sort: the merge passes keep each run's first k
// positions only, and the gathers clamp the permutation they read.
TEST(CudaCodegenTest, TopKMergesOnlyThePrefix) {
  ScopedNoDiskCache no_cache;
  auto fn = Build([](graph::Graph* g) {
    auto top = graph::TopK(graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 3, 5000)), 7);
    return std::vector<Node>{top.values, top.indices};
  });
  const Program p = GenerateProgram(*fn);
  int merges = 0, clamped = 0;
  for (const KernelSpec& k : p.kernels) {
    if (k.name.find("_sort_merge_") != std::string::npos) {
      ++merges;
      EXPECT_NE(k.source.find("if (j - run >= 7LL) continue;"), std::string::npos) << k.source;
    }
    clamped += k.source.find("kMin(kMax(") != std::string::npos;
  }
  EXPECT_EQ(merges, 2);
  EXPECT_EQ(clamped, 2);
  ExpectCompiles(p, {"sm_90"});
}

// The solver steps a program's library calls are planned as.
std::vector<LibraryCall> LibraryCallsOf(const Program& p) {
  std::vector<LibraryCall> out;
  for (const Step& s : p.steps) {
    if (s.kind == StepKind::kLibrary) out.push_back(p.library_calls[static_cast<size_t>(s.index)]);
  }
  return out;
}

// KILN_CUDA_PROFILE's labels: a step on a scratch value (the patches of a
// convolution off cuDNN, a factorization's work area or results) is named
// by the instruction that made it, a product by its extents, a library call
// by its library, a kernel among several of its value's by its name; each
// names the caller's line.
TEST(CudaCodegenTest, StepLabelsNameTheServedOpAndLibrary) {
  int ops_line = 0;  // where the convolution and the Cholesky are made
  auto fn = Build([&](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 2, 5, 5, 3));
    Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 3, 3, 8));
    Node a = graph::Parameter(g, "a", shapes::Make(dtypes::Float64, 4, 4));
    Node b = graph::Parameter(g, "b", shapes::Make(dtypes::Float32, 4, 4));
    const graph::QrResult qr = graph::Qr(b);
    const graph::EighResult eigh = graph::Eigh(b);
    ops_line = __LINE__ + 1;
    return std::vector<Node>{graph::ConvGeneral(x, w, Conv2D("NHWC")), graph::Cholesky(a), qr.q, qr.r,
                             eigh.eigenvalues};
  });
  const Program p = GenerateProgram(*fn);
  const std::vector<std::string> labels = ProgramStepLabels(p);
  ASSERT_EQ(labels.size(), p.steps.size());
  std::string all;
  for (const std::string& l : labels) all += l + "\n";
  const std::string line = "(cuda_codegen_test.cc:" + std::to_string(ops_line) + ")";
  EXPECT_NE(all.find("ConvGeneral -> Float32[2, 5, 5, 8] " + line + ", its Float32[50, 27] buffer [kiln_im2col_"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("ConvGeneral -> Float32[2, 5, 5, 8] " + line + " [cuBLASLt 50x8x27]"), std::string::npos) << all;
  EXPECT_NE(all.find("Cholesky -> Float64[4, 4] " + line + " [cuSOLVER potrf]"), std::string::npos) << all;
  // Its kernels around the call (copying in, zeroing the other triangle)
  // by their names, not as fusions computing the Cholesky.
  EXPECT_NE(all.find("Cholesky -> Float64[4, 4] " + line + " [kiln_cholesky_finish_"), std::string::npos) << all;
  EXPECT_EQ(all.find("ops -> Float64[4, 4]"), std::string::npos) << all;
  // Factorizations with tuples of results: named by the op, the buffer's
  // shape after it.
  EXPECT_NE(all.find("Qr (cuda_codegen_test.cc:" + std::to_string(ops_line - 3) +
                     "), its Float32[1, 4, 4] buffer [cuSOLVER geqrf]"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("), its Float32[4, 4] buffer [kiln_qr_r_"), std::string::npos) << all;
  EXPECT_NE(all.find("Eigh (cuda_codegen_test.cc:" + std::to_string(ops_line - 2) +
                     "), its Float32[1, 4, 4] buffer [cuSOLVER syevd]"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("), its Float32[4] buffer [kiln_result_"), std::string::npos) << all;  // the eigenvalues
  EXPECT_EQ(all.find("Qr ->"), std::string::npos) << all;
  EXPECT_EQ(all.find("Eigh ->"), std::string::npos) << all;
  EXPECT_EQ(all.find("scratch"), std::string::npos) << all;
  EXPECT_NE(all.find("Parameter -> Float32[2, 5, 5, 3]"), std::string::npos) << all;  // steps without work too
}

// Linear algebra is cuSOLVER and cuBLAS calls on column-major matrices:
// row-major triangles flip, LU and QR transpose into column-major order, a
// wide SVD is gesvd of the tall column-major reading, and a factorization's
// elements are buffers its GetTupleElements alias.
TEST(CudaCodegenTest, LinearAlgebraIsSolverStepsOnColumnMajorMatrices) {
  ScopedNoDiskCache no_cache;
  auto fn = Build([](graph::Graph* g) {
    Node small = graph::Parameter(g, "s", shapes::Make(dtypes::Float32, 6, 4, 4));
    Node big = graph::Parameter(g, "b", shapes::Make(dtypes::Float64, 2, 100, 100));
    Node wide = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, 3, 5));
    const graph::LuResult lu = graph::Lu(small);
    const graph::SvdResult svd = graph::Svd(wide);
    return std::vector<Node>{graph::Cholesky(small), graph::Lu(big).lu, lu.lu, lu.permutation,
                             graph::TriangularSolve(small, small, {.left_side = false, .lower = false}), svd.u};
  });
  const Program p = GenerateProgram(*fn);
  using Kind = LibraryCall::Kind;
  auto find = [&](Kind kind, dtypes::DType dtype) {
    LibraryCall found;
    int count = 0;
    for (const LibraryCall& s : LibraryCallsOf(p)) {
      if (s.kind == kind && s.dtype == dtype) found = s, ++count;
    }
    EXPECT_EQ(count, 1) << static_cast<int>(kind) << " " << dtypes::Name(dtype);
    return found;
  };
  auto shape_of = [&](int id) { return p.function.instructions[static_cast<size_t>(id)].shape; };
  EXPECT_EQ(LibraryCallsOf(p).size(), 5u);
  // Cholesky: lower row-major is upper column-major; six 4 x 4: batched.
  const LibraryCall chol = find(Kind::kPotrf, dtypes::Float32);
  EXPECT_FALSE(chol.lower);
  EXPECT_TRUE(chol.batched);
  EXPECT_EQ(chol.batch, 6);
  // LU of two 100 x 100: the 64-bit getrf per matrix, Int64 pivots.
  const LibraryCall big = find(Kind::kGetrf, dtypes::Float64);
  EXPECT_FALSE(big.batched);
  EXPECT_EQ(shape_of(big.outputs[0]), shapes::Make(dtypes::Int64, 2, 100));
  // LU of six 4 x 4: batched, Int32 pivots.
  const LibraryCall small = find(Kind::kGetrf, dtypes::Float32);
  EXPECT_TRUE(small.batched);
  EXPECT_EQ(shape_of(small.outputs[0]), shapes::Make(dtypes::Int32, 6, 4));
  // X op(A) = B with upper A: op(A)ᵀ Xᵀ = Bᵀ, a left-side solve by the
  // lower column-major reading.
  const LibraryCall trsm = find(Kind::kTrsm, dtypes::Float32);
  EXPECT_TRUE(trsm.left_side);
  EXPECT_TRUE(trsm.lower);
  EXPECT_FALSE(trsm.transpose);
  // SVD of a 3 x 5 matrix: gesvd of its 5 x 3 column-major reading.
  const LibraryCall svd = find(Kind::kGesvd, dtypes::Float32);
  EXPECT_EQ(svd.rows, 5);
  EXPECT_EQ(svd.cols, 3);
  int aliases = 0;
  for (const Step& step : p.steps) {
    aliases += step.kind == StepKind::kAlias &&
               p.function.instructions[static_cast<size_t>(step.value)].op == ir::OpType::kGetTupleElement;
  }
  EXPECT_EQ(aliases, 9);  // every element of the two Lus and the Svd (not dead-code eliminated here)
  ExpectCompiles(p, {"sm_80", "sm_90"});
}

// Hand-built IR the generator cannot run is an error naming the op.
TEST(CudaCodegenTest, LinearAlgebraRejectsBadHandBuiltIr) {
  auto cholesky = [](const shapes::Shape& in, const shapes::Shape& out) {
    ir::Function fn;
    fn.name = "hand";
    fn.instructions.push_back({ir::OpType::kParameter, {}, in, ir::ParameterAttrs{0, "a"}, ""});
    fn.instructions.push_back({ir::OpType::kCholesky, {0}, out, ir::LinalgAttrs{}, "hand.cc:1"});
    fn.parameters = {0};
    fn.outputs = {1};
    return fn;
  };
  const shapes::Shape half = shapes::Make(dtypes::Float16, 3, 3);
  KILN_EXPECT_ERROR(GenerateProgram(cholesky(half, half)),
                    "cuda: Cholesky of Float16[3, 3] is not supported (Float32 and Float64 only)");
  KILN_EXPECT_ERROR(GenerateProgram(cholesky(shapes::Make(dtypes::Float32, 3, 3), shapes::Make(dtypes::Float32, 3, 2))),
                    "cuda: Cholesky has inconsistent shapes Float32[3, 3] -> Float32[3, 2]");
}

// A transform longer than cuFFT's int sizes is an error naming the op
// (planned only: nothing is allocated).
TEST(CudaCodegenTest, FftBeyondCufftIntSizesIsAnError) {
  auto fn = Build([](graph::Graph* g) {
    return std::vector<Node>{graph::FFT(graph::Parameter(g, "x", shapes::Make(dtypes::Complex64, int64_t{1} << 31)))};
  });
  KILN_EXPECT_ERROR(GenerateProgram(*fn), "cuda: Fft exceeds cuFFT's int sizes (at most 2^30 points per transform)");
}

// While and If are steps that run their sub-functions (each an executable
// of its own); their results are buffers handed out by kTupleElement steps,
// which consumers read rather than recompute.
TEST(CudaCodegenTest, ControlFlowStepsHandOutTheirResults) {
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 4));
    auto loop = graph::While(
        [](const std::vector<Node>& c) { return graph::LessThan(graph::ReduceAllSum(c[0]), graph::ScalarLike(c[0], 100)); },
        [&](const std::vector<Node>& c) { return std::vector<Node>{c[0] * 2.0f + x, c[1] + 1}; },
        {x, graph::Const(g, int32_t{0})});
    auto branch = graph::If(
        graph::GreaterThan(loop[1], graph::Const(g, int32_t{3})),
        [&](const std::vector<Node>&) { return std::vector<Node>{loop[0]}; },
        [&](const std::vector<Node>&) { return std::vector<Node>{-loop[0]}; }, {});
    return std::vector<Node>{branch[0] + 1.0f, loop[1]};
  });
  const Program p = GenerateProgram(*fn);
  int whiles = 0, ifs = 0, elements = 0;
  for (const Step& step : p.steps) {
    whiles += step.kind == StepKind::kWhile;
    ifs += step.kind == StepKind::kIf;
    if (step.kind == StepKind::kTupleElement) {
      ++elements;
      EXPECT_TRUE(p.materialized[static_cast<size_t>(step.value)]);
      const ir::Instruction& gte = p.function.instructions[static_cast<size_t>(step.value)];
      EXPECT_EQ(ir::Attr<ir::TupleIndexAttrs>(gte).index, step.index);
      EXPECT_TRUE(step.take);  // each element's one reader takes its buffer over
    }
  }
  EXPECT_EQ(whiles, 1);
  EXPECT_EQ(ifs, 1);
  EXPECT_EQ(elements, 3);  // the loop's two results and the branch's one
  // The While reads all its operands (last uses count them).
  const std::vector<int> last = LastUses(p);
  for (size_t si = 0; si < p.steps.size(); ++si) {
    if (p.steps[si].kind != StepKind::kWhile) continue;
    for (int o : p.function.instructions[static_cast<size_t>(p.steps[si].value)].operands) {
      EXPECT_GE(last[static_cast<size_t>(o)], static_cast<int>(si));
    }
  }
}

// Combining scatters are atomic and parallel by default; deterministic
// programs apply the updates in order on one thread (as ScatterUpdate always
// does), and KILN_CUDA_DETERMINISTIC=1 asks for them.
TEST(CudaCodegenTest, DeterministicScattersRunInOrder) {
  ScopedNoDiskCache no_cache;
  auto fn = Build([](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 10, 4));
    Node idx = graph::Parameter(g, "i", shapes::Make(dtypes::Int32, 300, 1));
    Node upd = graph::Parameter(g, "u", shapes::Make(dtypes::Float32, 300, 4));
    ir::ScatterAttrs a;
    a.update_window_dims = {1}, a.inserted_window_dims = {0}, a.scatter_dims_to_operand_dims = {0}, a.index_vector_dim = 1;
    return std::vector<Node>{graph::ScatterSum(x, idx, upd, a), graph::ScatterMax(x, idx, upd, a)};
  });
  auto scatter_items = [](const Program& p) {
    std::vector<int64_t> items;
    for (const KernelSpec& k : p.kernels) {
      if (k.name.find("_scatter_") != std::string::npos) items.push_back(k.work_items);
    }
    return items;
  };
  EXPECT_EQ(scatter_items(GenerateProgram(*fn)), (std::vector<int64_t>{1200, 1200}));
  const Program ordered = GenerateProgram(*fn, {.deterministic = true});
  EXPECT_EQ(scatter_items(ordered), (std::vector<int64_t>{1, 1}));
  ExpectCompiles(ordered, {"sm_90"});
  {
    testing::ScopedEnv env("KILN_CUDA_DETERMINISTIC", "0");
    EXPECT_FALSE(ProgramOptionsFromEnvironment().deterministic);
  }
  testing::ScopedEnv env("KILN_CUDA_DETERMINISTIC", "1");
  EXPECT_TRUE(ProgramOptionsFromEnvironment().deterministic);
}

// An executable's kernels are split into modules that compile in parallel;
// kernels identical up to their names are compiled once.
TEST(CudaCodegenTest, KernelsAreSplitIntoModulesWithoutDuplicates) {
  ScopedNoDiskCache no_cache;
  // Six copies of one elementwise kernel (x * 2 + 1 on same-shaped
  // parameters) and five distinct ones (different constants).
  auto fn = Build([](graph::Graph* g) {
    std::vector<Node> outs;
    for (int i = 0; i < 11; ++i) {
      Node x = graph::Parameter(g, std::string("x").append(std::to_string(i)), shapes::Make(dtypes::Float32, 7, 3));
      outs.push_back(x * 2.0f + (i < 6 ? 1.0f : static_cast<float>(i)));
    }
    return outs;
  });
  const Program p = GenerateProgram(*fn);
  ASSERT_EQ(p.kernels.size(), 11u) << ModuleSource(p);
  const KernelModules m = SplitModules(p, 4);
  ASSERT_EQ(m.module_of.size(), 11u);
  ASSERT_EQ(m.entry.size(), 11u);
  // 6 distinct kernels, dealt 4 + 2 in program order.
  ASSERT_EQ(m.sources.size(), 2u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(m.entry[i], p.kernels[0].name) << i;
    EXPECT_EQ(m.module_of[i], 0) << i;
  }
  for (size_t i = 6; i < 11; ++i) {
    EXPECT_EQ(m.entry[i], p.kernels[i].name) << i;
    EXPECT_EQ(m.module_of[i], i < 9 ? 0 : 1) << i;
  }
  for (size_t i = 0; i < 11; ++i) {
    const std::string& src = m.sources[static_cast<size_t>(m.module_of[i])];
    EXPECT_NE(src.find(" " + m.entry[i] + "("), std::string::npos) << i;
    EXPECT_EQ(src.find(std::string(KernelPrelude())), 0u);  // every module starts with the prelude
  }
  for (size_t i = 1; i < 6; ++i) {
    for (const std::string& src : m.sources) EXPECT_EQ(src.find(" " + p.kernels[i].name + "("), std::string::npos) << i;
  }
  // One module per kernel, and all in one.
  EXPECT_EQ(SplitModules(p, 1).sources.size(), 6u);
  EXPECT_EQ(SplitModules(p, 100).sources.size(), 1u);
  std::vector<std::string> cubins;
  ASSERT_NO_THROW(cubins = CompileToCubins(m.sources, "sm_90"));
  ASSERT_EQ(cubins.size(), 2u);
  for (const std::string& c : cubins) EXPECT_EQ(c.compare(0, 4, "\x7f" "ELF"), 0);
}

// A name is replaced only as a whole identifier: kiln_fused_1 is not a part
// of kiln_fused_13, so kernels differing there stay apart.
TEST(CudaCodegenTest, KernelsDifferingOnlyInAnotherNameStayApart) {
  Program p;
  const std::string body = "(float* out) { out[0] = 1.0f; }\n";
  const auto kernel = [&](const std::string& name, const std::string& comment) {
    return KernelSpec{.name = name, .source = "extern \"C\" __global__ void " + name + body + "// " + comment + "\n"};
  };
  p.kernels = {kernel("kiln_a_1", "kiln_a_13"), kernel("kiln_a_2", "kiln_a_23"), kernel("kiln_a_3", "kiln_a_13")};
  const KernelModules m = SplitModules(p, 8);
  EXPECT_EQ(m.entry, (std::vector<std::string>{"kiln_a_1", "kiln_a_2", "kiln_a_1"}));
}

// Parallel compilation reports a failing module's NVRTC error.
TEST(CudaCodegenTest, ParallelCompileErrorsAreKilnErrors) {
  ScopedNoDiskCache no_cache;
  const std::string ok = std::string(KernelPrelude()) + "\nextern \"C\" __global__ void k(float* p) { p[0] = 2.5f; }\n";
  KILN_EXPECT_ERROR(CompileToCubins({ok, ok + "\nthis is not CUDA", ok}, "sm_90"), "NVRTC could not compile");
  EXPECT_TRUE(CompileToCubins({}, "sm_90").empty());
}

TEST(CudaCodegenTest, NvrtcErrorsAreKilnErrors) {
  KILN_EXPECT_ERROR(CompileToCubin("this is not CUDA", "sm_90"), "NVRTC could not compile");
}

TEST(CudaCodegenTest, DiskCacheIsReused) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("kiln_cuda_cache_test_" + std::to_string(::getpid()));
  testing::ScopedEnv env("KILN_CUDA_CACHE_DIR", dir.c_str());
  const std::string src = std::string(KernelPrelude()) + "\nextern \"C\" __global__ void k(float* p) { p[0] = " +
                          std::to_string(::getpid()) + ".0f; }\n";
  const CompileStats before = GetCompileStats();
  const std::string a = CompileToCubin(src, "sm_90");
  EXPECT_EQ(GetCompileStats().compiles, before.compiles + 1);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.path().extension() == ".cubin";
  EXPECT_EQ(files, 1u);
  const std::string b = CompileToCubin(src, "sm_90");  // now from memory
  EXPECT_EQ(a, b);
  EXPECT_EQ(GetCompileStats().memory_hits, before.memory_hits + 1);
  std::filesystem::remove_all(dir);
}

TEST(CudaBackendTest, UnavailableBackendSaysWhy) {
  const auto names = backends::Available();
  if (std::find(names.begin(), names.end(), "cuda") != names.end()) GTEST_SKIP() << "a GPU is present";
  KILN_EXPECT_ERROR(backends::NewWithName("cuda"), "backend \"cuda\" is not available on this machine (");
  KILN_EXPECT_ERROR(backends::NewWithName("cuda:1"), "is not available");
}

// cuDNN is loaded at run time: here (built with its headers, the library
// in the toolkit) it loads and reports its version; with
// KILN_CUDNN_LIBRARY naming a missing file (the cudnn_missing ctest) it
// says why, and programs plan no cuDNN steps on the CUDA backend.
TEST(CudnnLibraryTest, LoadsOrSaysWhy) {
  const std::string& reason = CudnnUnavailableReason();
  if (reason.find("built without cuDNN") != std::string::npos) GTEST_SKIP() << reason;
  const char* path = std::getenv("KILN_CUDNN_LIBRARY");
  if (path != nullptr && !std::filesystem::exists(path)) {
    EXPECT_NE(reason.find("cuDNN 9 could not be loaded ("), std::string::npos) << reason;
    EXPECT_NE(reason.find(path), std::string::npos) << reason;
    EXPECT_EQ(CudnnVersion(), "");
    KILN_EXPECT_ERROR(CudnnHandle(), "cuDNN 9 could not be loaded");
    return;
  }
  EXPECT_EQ(reason, "");
  EXPECT_EQ(CudnnVersion().rfind("9.", 0), 0u) << CudnnVersion();
}

}  // namespace
}  // namespace kiln::backends::cuda
