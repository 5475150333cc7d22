// Copyright 2026 The Kiln Authors.
// Kernel generation for the CUDA backend (see codegen.h): the fusion plan,
// the Generator's walk over a function with its shared helpers, and the
// public entry points. The per-op expressions are in kernel_builder.cc, the
// op families' kernels in codegen_*.cc.
#include "src/backends/cuda/codegen.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <numeric>
#include <utility>

#include "kiln/core/error.h"
#include "src/backends/cuda/prelude.h"
#include "src/backends/cuda/generator.h"

namespace kiln::backends::cuda {

namespace gen {

bool IsFusible(OpType op) {
  switch (ir::CategoryOf(op)) {
    case OpCategory::kUnary:
    case OpCategory::kBinary:
    case OpCategory::kComparison: return true;
    default: break;
  }
  switch (op) {
    case OpType::kWhere:
    case OpType::kClamp:
    case OpType::kConvertDType:
    case OpType::kReshape:
    case OpType::kIota:
    case OpType::kTranspose:
    case OpType::kBroadcastInDim:
    case OpType::kSlice:
    case OpType::kReverse:
    case OpType::kPad:
    case OpType::kConcatenate:
    case OpType::kDynamicSlice:
    case OpType::kDynamicUpdateSlice:
    case OpType::kComplex:
    case OpType::kReal:
    case OpType::kImag: return true;
    default: return false;
  }
}

bool IsFusible(const ir::Function& fn, const ir::Instruction& in) {
  if (in.op == OpType::kGetTupleElement) return fn.instructions[static_cast<size_t>(in.operands[0])].op == OpType::kSort;
  return IsFusible(in.op);
}

bool IsReduce(OpType op) {
  switch (op) {
    case OpType::kReduceSum:
    case OpType::kReduceProduct:
    case OpType::kReduceMax:
    case OpType::kReduceMin:
    case OpType::kReduceLogicalAnd:
    case OpType::kReduceLogicalOr:
    case OpType::kReduceLogicalXor:
    case OpType::kReduceBitwiseAnd:
    case OpType::kReduceBitwiseOr:
    case OpType::kReduceBitwiseXor: return true;
    default: return false;
  }
}

bool ReadsOperandInline(const ir::Instruction& in, size_t k) {
  if (IsFusible(in.op)) return true;
  // Linear algebra copies its (last) operand into its buffer first.
  if (in.op == OpType::kCholesky) return k == 0;
  if (in.op == OpType::kTriangularSolve) return k == 1;
  if (IsReduce(in.op) || in.op == OpType::kArgMinMax) return k == 0;
  if (in.op == OpType::kSort) {
    const auto& a = ir::Attr<ir::SortAttrs>(in);
    return a.comparator < 0 && std::find(a.keys.begin(), a.keys.end(), static_cast<int64_t>(k)) == a.keys.end();
  }
  return false;
}

bool IsCheap(const ir::Instruction& in) {
  return in.op == OpType::kIota || (in.op == OpType::kConstant && in.shape.Size() == 1);
}

ir::Function CanonicalizeDots(const ir::Function& fn) {
  ir::Function out;
  out.name = fn.name;
  out.subfunctions = fn.subfunctions;
  std::vector<int> map(fn.instructions.size());
  auto add = [&](ir::Instruction in) {
    out.instructions.push_back(std::move(in));
    return static_cast<int>(out.instructions.size()) - 1;
  };
  for (size_t id = 0; id < fn.instructions.size(); ++id) {
    ir::Instruction in = fn.instructions[id];
    for (int& o : in.operands) o = map[static_cast<size_t>(o)];
    if (in.op == OpType::kDotGeneral) {
      auto& a = std::get<ir::DotGeneralAttrs>(in.attrs);
      for (int side = 0; side < 2; ++side) {
        const int opnd = in.operands[static_cast<size_t>(side)];
        const ir::Instruction& x = out.instructions[static_cast<size_t>(opnd)];
        auto& batch = side == 0 ? a.lhs_batch : a.rhs_batch;
        auto& contracting = side == 0 ? a.lhs_contracting : a.rhs_contracting;
        std::vector<int64_t> free;
        for (int64_t d = 0; d < x.shape.Rank(); ++d) {
          if (std::find(batch.begin(), batch.end(), d) == batch.end() &&
              std::find(contracting.begin(), contracting.end(), d) == contracting.end()) {
            free.push_back(d);
          }
        }
        // lhs wants [batch, free, contracting]; rhs [batch, contracting, free];
        // the other order is a transposed matrix, also fine.
        std::vector<int64_t> want = batch, alt = batch;
        const auto& first = side == 0 ? free : contracting;
        const auto& second = side == 0 ? contracting : free;
        want.insert(want.end(), first.begin(), first.end());
        want.insert(want.end(), second.begin(), second.end());
        alt.insert(alt.end(), second.begin(), second.end());
        alt.insert(alt.end(), first.begin(), first.end());
        std::vector<int64_t> identity(static_cast<size_t>(x.shape.Rank()));
        std::iota(identity.begin(), identity.end(), 0);
        if (want == identity || alt == identity) continue;
        ir::Instruction t;
        t.op = OpType::kTranspose;
        t.operands = {opnd};
        std::vector<int64_t> tdims;
        for (int64_t d : want) tdims.push_back(x.shape.Dims()[static_cast<size_t>(d)]);
        t.shape = shapes::Shape(x.shape.DType(), tdims);
        t.attrs = ir::AxesAttrs{want};
        t.location = in.location;
        in.operands[static_cast<size_t>(side)] = add(std::move(t));
        // The operand's axes are now numbered in `want` order.
        const auto nb = static_cast<int64_t>(batch.size());
        const auto nf = static_cast<int64_t>(first.size());
        for (size_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<int64_t>(i);
        for (size_t i = 0; i < contracting.size(); ++i) {
          contracting[i] = side == 0 ? nb + static_cast<int64_t>(free.size()) + static_cast<int64_t>(i)
                                     : nb + static_cast<int64_t>(i);
        }
        (void)nf;
      }
    }
    map[id] = add(std::move(in));
  }
  for (int p : fn.parameters) out.parameters.push_back(map[static_cast<size_t>(p)]);
  for (int o : fn.outputs) out.outputs.push_back(map[static_cast<size_t>(o)]);
  return out;
}

std::vector<bool> PlanMaterialized(const ir::Function& fn) {
  const size_t n = fn.instructions.size();
  std::vector<int> users(n, 0);
  std::vector<bool> needs_buffer(n, false);
  for (size_t id = 0; id < n; ++id) {
    const auto& in = fn.instructions[id];
    for (size_t k = 0; k < in.operands.size(); ++k) {
      const auto o = static_cast<size_t>(in.operands[k]);
      ++users[o];
      if (!ReadsOperandInline(in, k)) needs_buffer[o] = true;
    }
  }
  for (int o : fn.outputs) needs_buffer[static_cast<size_t>(o)] = true, users[static_cast<size_t>(o)] += 2;
  std::vector<bool> m(n, false);
  for (size_t id = 0; id < n; ++id) {
    const auto& in = fn.instructions[id];
    if (in.op == OpType::kParameter || needs_buffer[id] || !IsFusible(fn, in)) {
      m[id] = !(in.op == OpType::kConstant && in.shape.Size() == 1 && !needs_buffer[id]);
      continue;
    }
    if (IsCheap(in)) continue;
    // Broadcasting a scalar costs one load per element: duplicate it.
    if (in.op == OpType::kBroadcastInDim && fn.instructions[static_cast<size_t>(in.operands[0])].shape.Size() == 1) {
      continue;
    }
    m[id] = users[id] > 1;
  }
  return m;
}

void Generator::Run() {
  const size_t count = fn_.instructions.size();  // not the scratch values steps append
  for (size_t id = 0; id < count; ++id) {
    const ir::Instruction& in = fn_.instructions[id];
    const int vid = static_cast<int>(id);
    if (!p_.materialized[id]) continue;
    current_ = vid;
    if (const auto e = bias_epilogues_.find(vid); e != bias_epilogues_.end()) {
      Dot(e->second.dot, vid, e->second.bias);
      continue;
    }
    if (in.op == OpType::kParameter) {
      p_.steps.push_back({StepKind::kParameter, vid, ir::Attr<ir::ParameterAttrs>(in).index});
    } else if (in.op == OpType::kConstant) {
      p_.steps.push_back({StepKind::kConstant, vid, 0});
    } else if (in.op == OpType::kBitcast || (in.op == OpType::kReshape && p_.materialized[static_cast<size_t>(in.operands[0])])) {
      if (!p_.materialized[static_cast<size_t>(in.operands[0])]) Unsupported(in, "needs a materialized operand");
      p_.steps.push_back({StepKind::kAlias, vid, 0});
    } else if (in.op == OpType::kSort) {
      Sort(vid);
    } else if (in.op == OpType::kWhile || in.op == OpType::kIf) {
      p_.steps.push_back({in.op == OpType::kWhile ? StepKind::kWhile : StepKind::kIf, vid, 0});
    } else if (in.op == OpType::kLu) {
      Lu(vid);
    } else if (in.op == OpType::kQr) {
      Qr(vid);
    } else if (in.op == OpType::kEigh) {
      Eigh(vid);
    } else if (in.op == OpType::kSvd) {
      Svd(vid);
    } else if (in.op == OpType::kAttentionGrad) {
      AttentionGrad(vid);
    } else if (in.op == OpType::kCollective) {
      Collective(vid);  // empty ones too: every process takes part, as on the CPU
    } else if (in.op == OpType::kGetTupleElement && elements_.count(in.operands[0]) > 0) {
      // An element of a factorization: its buffer.
      const auto index = static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(in).index);
      p_.function.instructions[id].operands[0] = elements_.at(in.operands[0]).at(index);
      p_.steps.push_back({StepKind::kAlias, vid, 0});
    } else if (in.op == OpType::kGetTupleElement && !IsFusible(fn_, in)) {
      if (I(in.operands[0]).op != OpType::kWhile && I(in.operands[0]).op != OpType::kIf) {
        Unsupported(in, "of " + std::string(ir::OpName(I(in.operands[0]).op)) + " has no CUDA kernel");
      }
      p_.steps.push_back({StepKind::kTupleElement, vid, static_cast<int>(ir::Attr<ir::TupleIndexAttrs>(in).index)});
    } else if (in.shape.Size() == 0) {
      p_.steps.push_back({StepKind::kKernel, vid, Add(EmptyKernel(vid))});
    } else if (IsFusible(fn_, in)) {
      p_.steps.push_back({StepKind::kKernel, vid, Add(Elementwise(vid))});
    } else if (IsReduce(in.op)) {
      p_.steps.push_back({StepKind::kKernel, vid, Add(Reduce(vid))});
    } else {
      switch (in.op) {
        case OpType::kArgMinMax: p_.steps.push_back({StepKind::kKernel, vid, Add(ArgMinMax(vid))}); break;
        case OpType::kDotGeneral: Dot(vid); break;
        case OpType::kConvGeneral:
          if (!CudnnConv(vid) && !GemmConv(vid)) p_.steps.push_back({StepKind::kKernel, vid, Add(Conv(vid))});
          break;
        case OpType::kReduceWindow: p_.steps.push_back({StepKind::kKernel, vid, Add(ReduceWindow(vid))}); break;
        case OpType::kSelectAndScatter:
          p_.steps.push_back({StepKind::kKernel, vid, Add(SelectAndScatter(vid))});
          break;
        case OpType::kGather: p_.steps.push_back({StepKind::kKernel, vid, Add(Gather(vid))}); break;
        case OpType::kScatterSum:
        case OpType::kScatterMax:
        case OpType::kScatterMin:
        case OpType::kScatterUpdate:
          if (in.op == OpType::kScatterSum && IsHalfType(in.shape.DType()) &&
              fn_.instructions[static_cast<size_t>(in.operands[2])].shape.Size() > 0) {
            HalfScatterSum(vid);
            break;
          }
          p_.steps.push_back({StepKind::kKernel, vid, Add(CopyOperand(vid))});
          if (fn_.instructions[static_cast<size_t>(in.operands[2])].shape.Size() > 0) {
            p_.steps.push_back({StepKind::kUpdate, vid, Add(Scatter(vid, vid))});
          }
          break;
        case OpType::kRNGBitGenerator: p_.steps.push_back({StepKind::kKernel, vid, Add(Rng(vid))}); break;
        case OpType::kCholesky: Cholesky(vid); break;
        case OpType::kTriangularSolve: TriangularSolve(vid); break;
        case OpType::kFft: Fft(vid); break;
        case OpType::kAttention: Attention(vid); break;
        default: Unsupported(in, "has no CUDA kernel");
      }
    }
  }
}

int Generator::Add(KernelSpec k) {
  p_.kernels.push_back(std::move(k));
  return static_cast<int>(p_.kernels.size()) - 1;
}

KernelSpec Generator::Finish(const KernelBuilder& b, int id, const char* kind, const std::string& loop, int64_t items,
                  bool per_block) {
  KernelSpec k;
  k.name = Name(id, kind);
  k.source = KernelSource(k.name, b, fn_, id, loop);
  k.inputs = b.Inputs();
  k.elementwise_input = b.ElementwiseInputs();
  k.work_items = items;
  k.block_per_item = per_block;
  return k;
}

KernelSpec Generator::EmptyKernel(int id) {
  KernelBuilder b(fn_, p_.materialized);
  return Finish(b, id, "empty", "", 0, false);
}

KernelSpec Generator::Elementwise(int id) {
  const ir::Instruction& in = I(id);
  KernelBuilder b(fn_, p_.materialized);
  const std::string v = b.Compute(id, LinearIdx("i"), true);
  const std::string body = b.Body() + "    out[i] = " + StoreExpr(in.shape.DType(), v) + ";\n";
  auto value = [id](KernelBuilder& vb, const Idx& idx) { return vb.Compute(id, idx, true); };
  if (auto vector = Vectorized(id, "fused", b, body, value)) return *std::move(vector);
  return Finish(b, id, "fused", ThreadLoop("i", in.shape.Size(), body), in.shape.Size(), false);
}

// Operand k of `id` (of the same shape) copied into its buffer.
KernelSpec Generator::CopyOperand(int id, size_t k) {
  const ir::Instruction& in = I(id);
  KernelBuilder b(fn_, p_.materialized);
  const std::string v = b.Value(in.operands[k], LinearIdx("i"), true);
  const std::string body = b.Body() + "    out[i] = " + StoreExpr(in.shape.DType(), v) + ";\n";
  const int operand = in.operands[k];
  auto value = [operand](KernelBuilder& vb, const Idx& idx) { return vb.Value(operand, idx, true); };
  if (auto vector = Vectorized(id, "copy", b, body, value)) return *std::move(vector);
  return Finish(b, id, "copy", ThreadLoop("i", in.shape.Size(), body), in.shape.Size(), false);
}

// A scratch value (a buffer with no instruction of its own), appended to
// the program's function so kernels and steps can name it.
int Generator::AddScratch(const shapes::Shape& shape) {
  ir::Instruction t;
  t.op = OpType::kParameter;
  t.shape = shape;
  t.attrs = ir::ParameterAttrs{-1, "scratch"};
  p_.function.instructions.push_back(std::move(t));
  p_.materialized.push_back(true);
  const int id = static_cast<int>(p_.function.instructions.size()) - 1;
  p_.scratch_owner[id] = current_;
  return id;
}

KernelSpec Generator::FinishScratch(const KernelBuilder& b, int scratch_id, const char* kind, const std::string& loop, int64_t items) {
  KernelSpec spec = Finish(b, scratch_id, kind, loop, items, false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

KernelSpec Generator::Rng(int id) {
  const ir::Instruction& in = I(id);
  const dtypes::DType dt = in.shape.DType();
  const int64_t per_block = dt == dtypes::Uint64 ? 2 : 4;
  const int64_t size = in.shape.Size();
  const int64_t blocks = (size + per_block - 1) / per_block;
  KernelBuilder b(fn_, p_.materialized);
  const std::string S = b.Input(in.operands[0]);
  const std::string st = StorageType(dt);
  std::string body = "    const KPhilox w = kPhilox(" + S + "[1], " + S + "[2], (u64)blk, " + S + "[0]);\n";
  body += "    const i64 first = blk * " + Str(per_block) + ";\n";
  if (dt == dtypes::Uint64) {
    body += "    for (int e = 0; e < 2 && first + e < " + Str(size) + "; ++e) out[first + e] = (u64)w.c[2 * e] | ((u64)w.c[2 * e + 1] << 32);\n";
  } else {
    body += "    for (int e = 0; e < 4 && first + e < " + Str(size) + "; ++e) out[first + e] = (" + st + ")w.c[e];\n";
  }
  KernelSpec spec = Finish(b, id, "rng", ThreadLoop("blk", blocks, body), blocks, false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

}  // namespace gen

std::string StorageType(dtypes::DType dtype) {
  switch (dtype) {
    case dtypes::Bool: return "unsigned char";
    case dtypes::Int8: return "signed char";
    case dtypes::Int16: return "short";
    case dtypes::Int32: return "int";
    case dtypes::Int64: return "long long";
    case dtypes::Uint8: return "unsigned char";
    case dtypes::Uint16: return "unsigned short";
    case dtypes::Uint32: return "unsigned int";
    case dtypes::Uint64: return "u64";
    case dtypes::Float16:
    case dtypes::BFloat16: return "unsigned short";
    case dtypes::Float32: return "float";
    case dtypes::Float64: return "double";
    case dtypes::Complex64: return "kc64";  // complex_math.cuh
    case dtypes::Complex128: return "kc128";
    default: break;
  }
  Throw("cuda: unsupported dtype " + std::string(dtypes::Name(dtype)));
}

bool MatmulDType(dtypes::DType dtype) {
  return dtype == dtypes::Float16 || dtype == dtypes::BFloat16 || dtype == dtypes::Float32 || dtype == dtypes::Float64;
}

bool UsesComplex(const Program& program) {
  for (const ir::Instruction& in : program.function.instructions) {
    if (dtypes::IsComplex(in.shape.DType())) return true;
  }
  return false;
}

bool UsesVectors(const Program& program) {
  return std::any_of(program.kernels.begin(), program.kernels.end(), [](const KernelSpec& k) { return k.vectorized; });
}

bool UsesAttention(const Program& program) {
  for (const ir::Instruction& in : program.function.instructions) {
    if (in.op == ir::OpType::kAttention || in.op == ir::OpType::kAttentionGrad) return true;
  }
  return false;
}

namespace {

// The prelude and the extras `program` needs, which every module starts with.
std::string ModuleHeader(const Program& program) {
  std::string s = KernelPrelude();
  if (UsesComplex(program)) s += std::string("\n") + ComplexMathSource();
  if (UsesAttention(program)) s += std::string("\n") + AttentionSource();
  if (UsesVectors(program)) s += std::string("\n") + VectorSource();
  return s;
}

bool IdentifierChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// `source` with every whole-identifier occurrence of `name` replaced by "@":
// two kernels with the same text here compile to the same code.
std::string WithoutName(const std::string& source, const std::string& name) {
  std::string out;
  size_t from = 0;
  for (size_t at = source.find(name); at != std::string::npos; at = source.find(name, at + name.size())) {
    const bool starts = at == 0 || !IdentifierChar(source[at - 1]);
    const bool ends = at + name.size() == source.size() || !IdentifierChar(source[at + name.size()]);
    if (!starts || !ends) continue;
    out.append(source, from, at - from);
    out += '@';
    from = at + name.size();
  }
  out.append(source, from, std::string::npos);
  return out;
}

}  // namespace

std::string ModuleSource(const Program& program) {
  std::string s = ModuleHeader(program);
  for (const KernelSpec& k : program.kernels) s += "\n" + k.source;
  return s;
}

KernelModules SplitModules(const Program& program, int per_module) {
  KernelModules m;
  const std::string header = ModuleHeader(program);
  std::map<std::string, size_t> first_with_text;  // text without its name -> kernel index
  std::vector<int> in_module;                     // distinct kernels per module
  for (size_t i = 0; i < program.kernels.size(); ++i) {
    const KernelSpec& k = program.kernels[i];
    const auto [it, fresh] = first_with_text.emplace(WithoutName(k.source, k.name), i);
    if (!fresh) {
      m.module_of.push_back(m.module_of[it->second]);
      m.entry.push_back(m.entry[it->second]);
      continue;
    }
    if (m.sources.empty() || in_module.back() == per_module) {
      m.sources.push_back(header);
      in_module.push_back(0);
    }
    m.sources.back() += "\n" + k.source;
    ++in_module.back();
    m.module_of.push_back(static_cast<int>(m.sources.size()) - 1);
    m.entry.push_back(k.name);
  }
  return m;
}

Capabilities ProgramCapabilities() {
  Capabilities caps;
  for (size_t i = 0; i < caps.ops.size(); ++i) caps.ops[i] = true;
  // Below this key length layers::DotProductAttention keeps the composed
  // ops, whose products run on cuBLASLt; the fused kernels (SIMT cores)
  // win on memory from there. A guess: not yet measured on a GPU.
  caps.fused_attention_min_kv_length = 2048;
  for (size_t i = 1; i <= static_cast<size_t>(dtypes::Complex128); ++i) caps.dtypes[i] = true;
  return caps;
}

ProgramOptions ProgramOptionsFromEnvironment() {
  const char* v = std::getenv("KILN_CUDA_DETERMINISTIC");
  const char* c = std::getenv("KILN_CUDA_CUDNN");
  const char* vec = std::getenv("KILN_CUDA_VECTORIZE");
  int64_t vectorize = kVectorizeMinElements;
  if (vec != nullptr && std::string(vec) == "0") vectorize = 0;
  if (vec != nullptr && std::string(vec) == "all") vectorize = 1;
  return {.deterministic = v != nullptr && std::string(v) == "1",
          .cudnn = c == nullptr || std::string(c) != "0",
          .vectorize_min_elements = vectorize};
}

Program GenerateProgram(const ir::Function& fn, const ProgramOptions& options) {
  Program p;
  p.function = gen::CanonicalizeDots(fn);
  p.materialized = gen::PlanMaterialized(p.function);
  std::map<int, gen::BiasEpilogue> bias_epilogues;
  if (options.epilogues) bias_epilogues = gen::PlanBiasEpilogues(p.function, p.materialized);
  // Room for the scratch values convolutions (at most 3 each), sorts (a
  // merge pass each: at most 21), factorizations (at most 8) and
  // AttentionGrads (3) add, so
  // references to instructions stay valid while they are appended.
  size_t extra = 0;
  for (const ir::Instruction& in : p.function.instructions) {
    const bool factorization =
        in.op == ir::OpType::kLu || in.op == ir::OpType::kQr || in.op == ir::OpType::kEigh || in.op == ir::OpType::kSvd;
    extra += in.op == ir::OpType::kSort ? 24 : factorization ? 10 : in.op == ir::OpType::kAttentionGrad ? 3 : 0;
  }
  p.function.instructions.reserve(p.function.instructions.size() * 4 + extra + 16);
  gen::Generator(p, options, std::move(bias_epilogues)).Run();
  // The last GetTupleElement of each While or If element takes its buffer.
  std::map<std::pair<int, int>, size_t> last_reader;
  for (size_t si = 0; si < p.steps.size(); ++si) {
    const Step& step = p.steps[si];
    if (step.kind != StepKind::kTupleElement) continue;
    last_reader[{p.function.instructions[static_cast<size_t>(step.value)].operands[0], step.index}] = si;
  }
  for (const auto& [element, si] : last_reader) p.steps[si].take = true;
  return p;
}

}  // namespace kiln::backends::cuda
