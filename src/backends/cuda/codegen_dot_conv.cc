// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): DotGeneral (cuBLASLt
// products, or a kernel for integers) and ConvGeneral (im2col and one
// product, or a direct kernel).
#include "src/backends/cuda/generator.h"

#include <algorithm>
#include <utility>

namespace kiln::backends::cuda::gen {

void Generator::Dot(int id, int out_id, int bias) {
  const ir::Instruction& in = I(id);
  if (out_id < 0) out_id = id;
  const auto& a = ir::Attr<ir::DotGeneralAttrs>(in);
  const ir::Instruction& lhs = I(in.operands[0]);
  const ir::Instruction& rhs = I(in.operands[1]);
  MatmulSpec m;
  m.lhs = in.operands[0];
  m.rhs = in.operands[1];
  auto prod = [](const std::vector<int64_t>& dims, const std::vector<int64_t>& axes) {
    int64_t p = 1;
    for (int64_t ax : axes) p *= dims[static_cast<size_t>(ax)];
    return p;
  };
  m.batch = prod(lhs.shape.Dims(), a.lhs_batch);
  m.k = prod(lhs.shape.Dims(), a.lhs_contracting);
  const int64_t lhs_size = lhs.shape.Size(), rhs_size = rhs.shape.Size();
  m.m = m.batch * m.k == 0 ? 0 : lhs_size / (m.batch * m.k);
  m.n = m.batch * m.k == 0 ? 0 : rhs_size / (m.batch * m.k);
  if (m.batch * m.k == 0) {  // recover m and n from the output when an extent is 0
    const int64_t nb = static_cast<int64_t>(a.lhs_batch.size());
    const int64_t nm = lhs.shape.Rank() - nb - static_cast<int64_t>(a.lhs_contracting.size());
    m.m = 1;
    for (int64_t i = 0; i < nm; ++i) m.m *= in.shape.Dims()[static_cast<size_t>(nb + i)];
    m.n = 1;
    for (size_t i = static_cast<size_t>(nb + nm); i < in.shape.Dims().size(); ++i) m.n *= in.shape.Dims()[i];
  }
  // After CanonicalizeDots: lhs is [b, m, k] unless its contracting axes come first.
  const int64_t nb = static_cast<int64_t>(a.lhs_batch.size());
  m.transpose_lhs = !a.lhs_contracting.empty() && a.lhs_contracting[0] == nb &&
                    lhs.shape.Rank() > nb + static_cast<int64_t>(a.lhs_contracting.size());
  const int64_t rb = static_cast<int64_t>(a.rhs_batch.size());
  m.transpose_rhs = !a.rhs_contracting.empty() && a.rhs_contracting[0] != rb;
  if (MatmulDType(in.shape.DType()) && in.shape.Size() > 0 && m.k > 0) {
    m.dtype = in.shape.DType();
    m.bf16_products = m.dtype == dtypes::Float32 && a.precision == ir::DotPrecision::kBFloat16;
    m.bias = bias;
    if (bias >= 0 && I(bias).shape.Size() != m.n) {
      Unsupported(I(out_id), "planned a bias epilogue whose vector is not the product's n (a Kiln bug)");
    }
    p_.matmuls.push_back(m);
    p_.steps.push_back({StepKind::kMatmul, out_id, static_cast<int>(p_.matmuls.size()) - 1});
    return;
  }
  if (bias >= 0) Unsupported(I(out_id), "planned a bias epilogue for a product off cuBLASLt (a Kiln bug)");
  // Generic kernel (integers, empty contractions).
  KernelBuilder b(fn_, p_.materialized);
  const std::string L = b.Input(m.lhs), R = b.Input(m.rhs);
  const dtypes::DType dt = in.shape.DType();
  const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
  const std::string li = m.transpose_lhs ? "(bi * " + Str(m.k) + " + kk) * " + Str(m.m) + " + mi"
                                         : "(bi * " + Str(m.m) + " + mi) * " + Str(m.k) + " + kk";
  const std::string ri = m.transpose_rhs ? "(bi * " + Str(m.n) + " + ni) * " + Str(m.k) + " + kk"
                                         : "(bi * " + Str(m.k) + " + kk) * " + Str(m.n) + " + ni";
  const std::string lv = "(" + acc + ")" + LoadExpr(lhs.shape.DType(), L + "[" + li + "]");
  const std::string rv = "(" + acc + ")" + LoadExpr(rhs.shape.DType(), R + "[" + ri + "]");
  std::string body = "    const i64 ni = o % " + Str(std::max<int64_t>(m.n, 1)) + ", mi = (o / " +
                     Str(std::max<int64_t>(m.n, 1)) + ") % " + Str(std::max<int64_t>(m.m, 1)) + ", bi = o / " +
                     Str(std::max<int64_t>(m.n * m.m, 1)) + ";\n";
  body += "    " + acc + " acc = (" + acc + ")0;\n";
  body += "    for (i64 kk = 0; kk < " + Str(m.k) + "; ++kk) acc = " +
          (IsFloatType(dt) ? "acc + " + lv + " * " + rv : "kAdd(acc, kMul(" + lv + ", " + rv + "))") + ";\n";
  body += "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
  KernelSpec spec = Finish(b, id, "dot", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  p_.steps.push_back({StepKind::kKernel, id, Add(std::move(spec))});
}

std::map<int, BiasEpilogue> PlanBiasEpilogues(const ir::Function& fn, std::vector<bool>& materialized) {
  const size_t n = fn.instructions.size();
  std::vector<int> readers(n, 0);
  for (const ir::Instruction& in : fn.instructions) {
    for (int o : in.operands) ++readers[static_cast<size_t>(o)];
  }
  for (int o : fn.outputs) readers[static_cast<size_t>(o)] += 2;
  std::map<int, BiasEpilogue> plan;
  for (size_t id = 0; id < n; ++id) {
    const ir::Instruction& add = fn.instructions[id];
    if (add.op != OpType::kAdd || add.operands.size() != 2 || add.operands[0] == add.operands[1]) continue;
    const dtypes::DType dt = add.shape.DType();
    if (dt != dtypes::Float32 && dt != dtypes::BFloat16 && dt != dtypes::Float16) continue;
    for (size_t k = 0; k < 2; ++k) {
      const int dot = add.operands[k], broadcast = add.operands[1 - k];
      const ir::Instruction& d = fn.instructions[static_cast<size_t>(dot)];
      const ir::Instruction& b = fn.instructions[static_cast<size_t>(broadcast)];
      const auto dot_id = static_cast<size_t>(dot);
      if (d.op != OpType::kDotGeneral || readers[dot_id] != 1 || !materialized[dot_id]) continue;
      if (b.op != OpType::kBroadcastInDim) continue;
      const ir::Instruction& vec = fn.instructions[static_cast<size_t>(b.operands[0])];
      const int64_t last = add.shape.Rank() - 1;
      if (last < 0 || vec.shape.Rank() != 1 || vec.shape.DType() != dt ||
          vec.shape.Dims()[0] != add.shape.Dims().back() || ir::Attr<ir::AxesAttrs>(b).axes != std::vector<int64_t>{last}) {
        continue;
      }
      // Dot's cuBLASLt path: a nonempty product with a nonempty contraction.
      const auto& a = ir::Attr<ir::DotGeneralAttrs>(d);
      const shapes::Shape& rhs = fn.instructions[static_cast<size_t>(d.operands[1])].shape;
      int64_t contraction = 1, batch = 1;
      for (int64_t ax : a.rhs_contracting) contraction *= rhs.Dims()[static_cast<size_t>(ax)];
      for (int64_t ax : a.rhs_batch) batch *= rhs.Dims()[static_cast<size_t>(ax)];
      if (!MatmulDType(dt) || d.shape.Size() == 0 || contraction == 0) continue;
      // cuBLASLt adds bias[j] along the rhs's free elements (MatmulSpec::n,
      // the rows of its column-major result): the vector must be exactly
      // that long, which a matrix-vector product (n = 1) or an rhs with
      // several free axes (n their product) is not.
      if (rhs.Size() / (batch * contraction) != vec.shape.Dims()[0]) continue;
      plan[static_cast<int>(id)] = {dot, b.operands[0]};
      materialized[static_cast<size_t>(dot)] = false;
      materialized[id] = true;
      materialized[static_cast<size_t>(b.operands[0])] = true;
      break;
    }
  }
  return plan;
}

// Convolutions without groups as one matrix product on cuBLASLt: the
// input's patches are written as rows of a scratch matrix P [batch x
// output positions, input features x kernel taps] (im2col), the kernel is
// viewed (or packed) as W [features x taps, output features], and P * W
// is the output (or is permuted into the output's layout). This covers
// the forward convolution and both of its gradients as autodiff writes
// them. Returns false where the direct kernel is used instead.
bool Generator::GemmConv(int id) {
  const ir::Instruction& in = I(id);
  const auto a = ir::Attr<ir::ConvAttrs>(in);
  const int x_id = in.operands[0], w_id = in.operands[1];
  const shapes::Shape xs_shape = I(x_id).shape, ws_shape = I(w_id).shape, out_shape = in.shape;
  const dtypes::DType dt = out_shape.DType();
  if (!MatmulDType(dt) || a.feature_group_count != 1 || a.batch_group_count != 1 || out_shape.Size() == 0) return false;
  const auto sz = [](int64_t v) { return static_cast<size_t>(v); };
  const auto& xd = xs_shape.Dims();
  const auto& wd = ws_shape.Dims();
  const auto& od = out_shape.Dims();
  const size_t ns = a.input_spatial_axes.size();
  const int64_t features_out = od[sz(a.output_feature_axis)];
  const int64_t rows = out_shape.Size() / features_out;
  const int64_t kc = ws_shape.Size() / features_out;
  if (kc == 0) return false;
  // Above 1 GiB of patches the direct kernel is used rather than the memory.
  if (rows * kc * static_cast<int64_t>(dtypes::SizeOf(dt)) > (int64_t{1} << 30)) return false;
  // The kernel's axes other than its output features, in memory order: the
  // order of P's columns, so W needs no copy when output features are
  // its first or last axis.
  const auto w_rank = static_cast<int64_t>(wd.size());
  std::vector<int64_t> w_axes;
  for (int64_t d = 0; d < w_rank; ++d) {
    if (d != a.kernel_output_feature_axis) w_axes.push_back(d);
  }
  MatmulSpec m;
  m.m = rows;
  m.k = kc;
  m.n = features_out;
  m.lhs = AddScratch(shapes::Shape(dt, {rows, kc}));
  if (a.kernel_output_feature_axis == w_rank - 1) {
    m.rhs = w_id;
  } else if (a.kernel_output_feature_axis == 0) {
    m.rhs = w_id;
    m.transpose_rhs = true;
  } else {
    m.rhs = AddScratch(shapes::Shape(dt, {kc, features_out}));
  }
  const bool direct_out = a.output_batch_axis == 0 && a.output_feature_axis == static_cast<int64_t>(ns) + 1 &&
                          [&] {
                            for (size_t j = 0; j < ns; ++j) {
                              if (a.output_spatial_axes[j] != static_cast<int64_t>(j) + 1) return false;
                            }
                            return true;
                          }();
  const int y_id = direct_out ? id : AddScratch(shapes::Shape(dt, {rows, features_out}));
  const std::string ct = ComputeType(dt);
  // 1. P: patches, zeros for padding and dilation holes.
  {
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(x_id);
    const auto xstr = StridesOf(xd);
    std::vector<int64_t> row_dims{od[sz(a.output_batch_axis)]};
    for (size_t j = 0; j < ns; ++j) row_dims.push_back(od[sz(a.output_spatial_axes[j])]);
    std::vector<int64_t> col_dims;
    for (int64_t d : w_axes) col_dims.push_back(wd[sz(d)]);
    std::string body = "    const i64 r = i / " + Str(kc) + ", col = i % " + Str(kc) + ";\n";
    body += b.TakeBody();
    const std::vector<std::string> rax = b.Axes(LinearIdx("r"), row_dims);
    const std::vector<std::string> cax = b.Axes(LinearIdx("col"), col_dims);
    body += b.TakeBody();
    // Column axis of each kernel axis.
    auto col_of = [&](int64_t kernel_axis) {
      for (size_t c = 0; c < w_axes.size(); ++c) {
        if (w_axes[c] == kernel_axis) return cax[c];
      }
      return std::string("0LL");
    };
    std::string cond = "true";
    std::string off = rax[0] + " * " + Str(xstr[sz(a.input_batch_axis)]) + " + " + col_of(a.kernel_input_feature_axis) +
                      " * " + Str(xstr[sz(a.input_feature_axis)]);
    for (size_t j = 0; j < ns; ++j) {
      const std::string q = "q" + std::to_string(j);
      body += "    i64 " + q + " = " + rax[j + 1] + " * " + Str(a.strides[j]) + " - " + Str(a.padding_low[j]) + " + " +
              col_of(a.kernel_spatial_axes[j]) + " * " + Str(a.kernel_dilation[j]) + ";\n";
      if (a.input_dilation[j] != 1) {
        cond += " && " + q + " >= 0 && " + q + " % " + Str(a.input_dilation[j]) + " == 0";
        body += "    " + q + " = " + q + " / " + Str(a.input_dilation[j]) + ";\n";
      }
      cond += " && " + q + " >= 0 && " + q + " < " + Str(xd[sz(a.input_spatial_axes[j])]);
      off += " + " + q + " * " + Str(xstr[sz(a.input_spatial_axes[j])]);
    }
    // (The dilation test reads q before the division; it runs first.)
    const std::string st = StorageType(dt);
    std::string pre_cond = "true";
    if (std::any_of(a.input_dilation.begin(), a.input_dilation.end(), [](int64_t v) { return v != 1; })) {
      // Recompute the undivided positions for the dilation test.
      pre_cond = "true";
      for (size_t j = 0; j < ns; ++j) {
        if (a.input_dilation[j] == 1) continue;
        const std::string raw = "(" + rax[j + 1] + " * " + Str(a.strides[j]) + " - " + Str(a.padding_low[j]) + " + " +
                                col_of(a.kernel_spatial_axes[j]) + " * " + Str(a.kernel_dilation[j]) + ")";
        pre_cond += " && " + raw + " >= 0 && " + raw + " % " + Str(a.input_dilation[j]) + " == 0";
      }
      cond = pre_cond;
      for (size_t j = 0; j < ns; ++j) {
        const std::string q = "q" + std::to_string(j);
        cond += " && " + q + " < " + Str(xd[sz(a.input_spatial_axes[j])]) + " && " + q + " >= 0";
      }
    }
    body += "    out[i] = (" + cond + ") ? " + X + "[" + off + "] : (" + st + ")0;\n";
    p_.steps.push_back({StepKind::kKernel, m.lhs, Add(FinishScratch(b, m.lhs, "im2col", ThreadLoop("i", rows * kc, body), rows * kc))});
  }
  // 2. W packed as [taps x features, output features] when its output
  // features sit in the middle of its axes.
  if (m.rhs != w_id) {
    KernelBuilder b(fn_, p_.materialized);
    const std::string W = b.Input(w_id);
    const auto wstr = StridesOf(wd);
    std::vector<int64_t> col_dims;
    for (int64_t d : w_axes) col_dims.push_back(wd[sz(d)]);
    std::string body = "    const i64 col = i / " + Str(features_out) + ", o = i % " + Str(features_out) + ";\n";
    const std::vector<std::string> cax = b.Axes(LinearIdx("col"), col_dims);
    body += b.TakeBody();
    std::string off = "o * " + Str(wstr[sz(a.kernel_output_feature_axis)]);
    for (size_t c = 0; c < w_axes.size(); ++c) off += " + " + cax[c] + " * " + Str(wstr[sz(w_axes[c])]);
    body += "    out[i] = " + W + "[" + off + "];\n";
    p_.steps.push_back({StepKind::kKernel, m.rhs, Add(FinishScratch(b, m.rhs, "pack", ThreadLoop("i", kc * features_out, body), kc * features_out))});
  }
  // 3. The product.
  m.dtype = dt;
  p_.matmuls.push_back(m);
  p_.steps.push_back({StepKind::kMatmul, y_id, static_cast<int>(p_.matmuls.size()) - 1});
  // 4. [rows, output features] into the output's layout.
  if (!direct_out) {
    KernelBuilder b(fn_, p_.materialized);
    const std::string Y = b.Input(y_id);
    const std::vector<std::string> oax = b.Axes(LinearIdx("i"), od);
    std::string body = b.TakeBody();
    std::string r = oax[sz(a.output_batch_axis)];
    for (size_t j = 0; j < ns; ++j) r = "(" + r + ") * " + Str(od[sz(a.output_spatial_axes[j])]) + " + " + oax[sz(a.output_spatial_axes[j])];
    body += "    out[i] = " + Y + "[(" + r + ") * " + Str(features_out) + " + " + oax[sz(a.output_feature_axis)] + "];\n";
    KernelSpec spec = Finish(b, id, "conv_out", ThreadLoop("i", out_shape.Size(), body), out_shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    p_.steps.push_back({StepKind::kKernel, id, Add(std::move(spec))});
  }
  return true;
}

KernelSpec Generator::Conv(int id) {
  const ir::Instruction& in = I(id);
  const auto& a = ir::Attr<ir::ConvAttrs>(in);
  const ir::Instruction& x = I(in.operands[0]);
  const ir::Instruction& w = I(in.operands[1]);
  const auto& xd = x.shape.Dims();
  const auto& wd = w.shape.Dims();
  const auto& od = in.shape.Dims();
  const auto xs = StridesOf(xd), ws = StridesOf(wd);
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(in.operands[0]), W = b.Input(in.operands[1]);
  std::vector<std::string> oax = b.Axes(LinearIdx("o"), od);
  const dtypes::DType dt = in.shape.DType();
  const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
  const auto sz = [](auto v) { return static_cast<size_t>(v); };
  const int64_t out_features = od[sz(a.output_feature_axis)];
  const int64_t cin_group = wd[sz(a.kernel_input_feature_axis)];
  const int64_t fgroup_out = out_features / a.feature_group_count;
  const int64_t bgroup_out = out_features / a.batch_group_count;
  const int64_t out_batch = od[sz(a.output_batch_axis)];
  std::string body = b.Body();
  const std::string of = oax[sz(a.output_feature_axis)], ob = oax[sz(a.output_batch_axis)];
  body += "    const i64 in_batch = (" + of + " / " + Str(bgroup_out) + ") * " + Str(out_batch) + " + " + ob + ";\n";
  body += "    const i64 c0 = (" + of + " / " + Str(fgroup_out) + ") * " + Str(cin_group) + ";\n";
  body += "    " + acc + " acc = (" + acc + ")0;\n";
  body += "    for (i64 c = 0; c < " + Str(cin_group) + "; ++c) {\n";
  std::string xoff = "in_batch * " + Str(xs[sz(a.input_batch_axis)]) + " + (c0 + c) * " + Str(xs[sz(a.input_feature_axis)]);
  std::string woff = "c * " + Str(ws[sz(a.kernel_input_feature_axis)]) + " + " + of + " * " +
                     Str(ws[sz(a.kernel_output_feature_axis)]);
  std::string close;
  for (size_t s = 0; s < a.input_spatial_axes.size(); ++s) {
    const std::string ks = "k" + std::to_string(s), ps = "q" + std::to_string(s);
    const int64_t kdim = wd[sz(a.kernel_spatial_axes[s])];
    const int64_t xdim = xd[sz(a.input_spatial_axes[s])];
    body += "    for (i64 " + ks + " = 0; " + ks + " < " + Str(kdim) + "; ++" + ks + ") {\n";
    body += "      i64 " + ps + " = " + oax[sz(a.output_spatial_axes[s])] + " * " + Str(a.strides[s]) + " - " +
            Str(a.padding_low[s]) + " + " + ks + " * " + Str(a.kernel_dilation[s]) + ";\n";
    if (a.input_dilation[s] != 1) {
      body += "      if (" + ps + " < 0 || " + ps + " % " + Str(a.input_dilation[s]) + " != 0) continue;\n";
      body += "      " + ps + " /= " + Str(a.input_dilation[s]) + ";\n";
    }
    body += "      if (" + ps + " < 0 || " + ps + " >= " + Str(xdim) + ") continue;\n";
    xoff += " + " + ps + " * " + Str(xs[sz(a.input_spatial_axes[s])]);
    woff += " + " + ks + " * " + Str(ws[sz(a.kernel_spatial_axes[s])]);
    close += "    }\n";
  }
  const std::string xv = "(" + acc + ")" + LoadExpr(x.shape.DType(), X + "[" + xoff + "]");
  const std::string wv = "(" + acc + ")" + LoadExpr(w.shape.DType(), W + "[" + woff + "]");
  body += "      acc = " + (IsFloatType(dt) ? "acc + " + xv + " * " + wv : "kAdd(acc, kMul(" + xv + ", " + wv + "))") + ";\n";
  body += close + "    }\n";
  body += "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
  KernelSpec spec = Finish(b, id, "conv", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

}  // namespace kiln::backends::cuda::gen
