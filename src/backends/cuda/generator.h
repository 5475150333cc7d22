// Copyright 2026 The Kiln Authors.
// The CUDA code generator's Generator (internal to codegen*.cc): it walks a
// function and appends the steps, kernels, products and library calls of its
// Program. Its methods are defined by op family: codegen.cc (the walk, the
// elementwise and shared helpers, RNG), codegen_vector.cc (elementwise
// kernels' vector loads), codegen_reduce.cc (reductions and windows),
// codegen_dot_conv.cc, codegen_cudnn.cc (convolutions on cuDNN),
// codegen_gather.cc (Gather, Scatter), codegen_sort.cc, codegen_linalg.cc,
// codegen_fft.cc, codegen_attention.cc and codegen_collective.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/backends/cuda/kernel_builder.h"

namespace kiln::backends::cuda::gen {

class Generator {
 public:
  Generator(Program& p, const ProgramOptions& options, std::map<int, BiasEpilogue> bias_epilogues = {})
      : p_(p), fn_(p.function), options_(options), bias_epilogues_(std::move(bias_epilogues)) {}
  // Appends the steps of every materialized instruction of the function.
  void Run();

 private:
  // ---------------------------------------------- codegen.cc: shared parts.
  const ir::Instruction& I(int id) const { return fn_.instructions[static_cast<size_t>(id)]; }
  int Add(KernelSpec k);
  std::string Name(int id, const char* kind) { return std::string("kiln_") + kind + "_" + std::to_string(id); }
  KernelSpec Finish(const KernelBuilder& b, int id, const char* kind, const std::string& loop, int64_t items,
                    bool per_block);
  KernelSpec FinishScratch(const KernelBuilder& b, int scratch_id, const char* kind, const std::string& loop,
                           int64_t items);
  int AddScratch(const shapes::Shape& shape);
  KernelSpec EmptyKernel(int id);
  KernelSpec Elementwise(int id);
  KernelSpec CopyOperand(int id, size_t k = 0);
  // codegen_vector.cc: the kernel writing `id` four elements per thread,
  // its same-shape inputs read with vector loads; nullopt where that does
  // not apply (small, complex, no such input, a long body, or turned off).
  // `scalar` built the one-element loop body `scalar_body` (kept for the
  // tail and for unaligned buffers); `value` computes the output at an index.
  std::optional<KernelSpec> Vectorized(int id, const char* kind, const KernelBuilder& scalar,
                                       const std::string& scalar_body,
                                       const std::function<std::string(KernelBuilder&, const Idx&)>& value);
  KernelSpec Rng(int id);

  // -------------------------------- codegen_reduce.cc: reductions, windows.
  // Reductions: the accumulator type, identity and combining expression.
  struct ReduceKind {
    std::string acc_type, identity;
    std::function<std::string(const std::string&, const std::string&)> combine;
  };
  // A cumulative window (CumSum and friends, ir::AsCumulativeWindow) viewed
  // as [outer, n, inner] around its axis.
  struct Scan {
    int64_t outer = 1, n = 1, inner = 1;
    bool exclusive = false, reverse = false;
  };
  ReduceKind KindOf(OpType op, dtypes::DType dt);
  static std::string IntLimit(dtypes::DType dt, bool max);
  static std::string BlockCombine(const std::string& acc_type, const std::string& v,
                                  const std::function<std::string(const std::string&, const std::string&)>& combine);
  KernelSpec Reduce(int id);
  KernelSpec ArgMinMax(int id);
  static std::optional<Scan> AsScan(const ir::WindowAttrs& a, const std::vector<int64_t>& dims, dtypes::DType dt);
  static std::string ScanLane(const Scan& s);
  static std::string ScanLoop(const Scan& s);
  KernelSpec ScanWindow(int id, const Scan& s, const ReduceKind& k);
  KernelSpec ReduceWindow(int id);
  KernelSpec SelectAndScatter(int id);
  KernelSpec ScanSelectAndScatter(int id, const Scan& s, const std::string& acc, const std::string& ct, bool is_max);

  // --------------------------------------- codegen_dot_conv.cc: products.
  // The product `id`, written as `out_id` (the Add of a bias epilogue,
  // with its row vector `bias`, or `id` itself).
  void Dot(int id, int out_id = -1, int bias = -1);
  bool GemmConv(int id);
  KernelSpec Conv(int id);
  // codegen_cudnn.cc: a kConv step (with a kernel packing the filter or
  // unpacking a filter gradient where needed); false where cuDNN cannot
  // run the convolution or options_.cudnn is off.
  bool CudnnConv(int id);

  // ------------------------------------- codegen_gather.cc: gather, scatter.
  static std::string IndexComponent(const std::string& I_arg, const ir::Instruction& indices, int64_t ivd,
                                    const std::vector<std::string>& batch_axes, int64_t k, int64_t lo, int64_t hi);
  KernelSpec Gather(int id);
  KernelSpec Scatter(int id, int out_id);
  void HalfScatterSum(int id);

  // ---------------------------------------------------- codegen_sort.cc.
  // Sort computes a permutation, the Sort's value in the Program: Int32 of
  // the operands' shape, holding at each position along the axis the
  // position the element there comes from (what ArgSort returns); each
  // GetTupleElement gathers its operand by it, fused into its consumers.
  // Blocks first sort chunks of up to kSortChunk positions of a lane in
  // shared memory (bitonic), then each pass merges pairs of sorted runs:
  // every element finds its place by a binary search in the other run. Ties
  // are broken by position, so every sort is stable.
  static constexpr int64_t kSortChunk = 2048;
  // A Sort's lanes: `count` of them, each of n positions `inner` apart.
  struct SortLanes {
    int64_t n = 0, inner = 1, count = 0;
    // The offset of lane `u`'s first element.
    std::string Base(const std::string& u) const {
      return "(" + u + " / " + Str(inner) + ") * " + Str(n * inner) + " + " + u + " % " + Str(inner);
    }
  };
  void Sort(int id);
  SortLanes LanesOf(int id) const;
  KernelSpec FinishSort(int id, const KernelBuilder& b, int out_id, const char* kind, const std::string& cmp,
                        const std::string& loop, int64_t items, bool per_block);
  std::string BeforeLambda(int id, KernelBuilder& b, const SortLanes& lanes, const std::string& cmp);
  std::string ComparatorFunction(int id, const std::string& name);
  KernelSpec SortChunks(int id, int out_id, const SortLanes& lanes, int64_t chunk);
  KernelSpec MergeRuns(int id, int prev, int out_id, const SortLanes& lanes, int64_t width, int64_t prefix);

  // ------------------------------------ codegen_linalg.cc: linear algebra.
  // On cuSOLVER and cuBLAS (LibraryCall): a kernel copies the operand into
  // the output's buffer (its producers fused), the library factors or
  // solves in place, and kernels then give the CPU backend's results where
  // LAPACK reports a failure (NaN matrices) and write the factorizations'
  // tuple elements.
  // Matrices up to this order go through the libraries' batched entry
  // points when there are several (one launch for the batch; those are
  // written for small matrices).
  static constexpr int64_t kBatchedOrder = 64;
  // Which elements of a row-major matrix NotFinite checks.
  enum class Triangle { kAll, kLower, kUpper };
  int AddLibraryCall(const LibraryCall& s);
  int PointerArray(int x, int64_t batch, int64_t size);
  LibraryCall Spec(LibraryCall::Kind kind, dtypes::DType dtype, int64_t batch, int64_t rows, int64_t cols);
  static int64_t BatchOf(const shapes::Shape& a);
  void RequireSolverDType(const ir::Instruction& in, const shapes::Shape& a);
  int Flags(int64_t batch) { return AddScratch(shapes::Shape(dtypes::Int32, {batch})); }
  void Cholesky(int id);
  KernelSpec CholeskyFinish(int id, const LibraryCall& s);
  void TriangularSolve(int id);
  KernelSpec TriangularSolveFinish(int id, const LibraryCall& s);
  std::vector<int> FactorizationElements(int id, const std::vector<shapes::Shape>& results, size_t own);
  int ColumnMajorCopy(int operand, int64_t batch, int64_t m, int64_t n, bool transpose);
  KernelSpec NotFinite(int x, int bad, int64_t batch, int64_t rows, int64_t cols, Triangle triangle);
  void Result(int out_id, int src, const std::vector<int>& failed, int64_t rows, int64_t cols, bool column_major);
  void Constant(int out_id, bool identity);  // also for the FFT's empty inputs
  void Lu(int id);
  KernelSpec LuPermutation(int perm, int pivots, int bad, int64_t batch, int64_t m, int64_t k);
  KernelSpec CheckPivots(int bad, int pivots, int64_t batch, int64_t m, int64_t k);
  void Qr(int id);
  void Eigh(int id);
  void Svd(int id);

  // ------------------------------------------------ codegen_attention.cc.
  // Kernels calling attention.cuh: a block owns `rows` rows, walks tiles
  // of `cols`, stages both in shared memory when `stage`.
  struct AttentionTiles {
    int64_t rows, cols;
    bool stage;
  };
  static AttentionTiles TilesFor(int64_t d, int64_t elem, int row_arrays, int tile_arrays, int per_tile_row);
  std::string AttentionPlan(int id, size_t mask_index);
  KernelSpec AttentionKernel(int out_id, const char* kind, const std::string& function, const AttentionTiles& t,
                             const std::string& extra_template, const std::vector<int>& operands,
                             const std::string& plan, int64_t blocks);
  void Attention(int id);
  void AttentionGrad(int id);

  // ------------------------------------------------------ codegen_fft.cc.
  void Fft(int id);

  // ----------------------------------------------- codegen_collective.cc.
  // A Collective: a LibraryCall step of the distributed engine (see
  // LibraryCall::Kind::kCollective), after a kernel that copies the
  // operand into the output (AllReduce, Broadcast) or allocates it.
  void Collective(int id);
  KernelSpec ScaleInPlace(int id, double factor);

  Program& p_;
  const ir::Function& fn_;  // p_.function, which scratch values extend
  ProgramOptions options_;
  // Per factorization (Lu, Qr, Eigh, Svd) and AttentionGrad: the values
  // holding its tuple's elements, which its GetTupleElements alias.
  std::map<int, std::vector<int>> elements_;
  // PlanBiasEpilogues' additions: Add id -> its product and vector.
  std::map<int, BiasEpilogue> bias_epilogues_;
  // The instruction Run is generating (Program::scratch_owner's owners).
  int current_ = -1;
};

}  // namespace kiln::backends::cuda::gen
