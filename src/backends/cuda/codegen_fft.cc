// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): Fft as cuFFT calls
// (LibraryCall kFft, kRfft, kIrfftLead, kIrfft) with generated kernels
// around them: the copy of the input (its producers fused) that in-place
// transforms work on, and the 1/N of the inverse transforms. IRFFT over
// several axes runs as the CPU's (numpy's irfftn): the inverse complex
// transform over the leading transformed axes, then complex-to-real over
// the last one (cuFFT's multi-axis complex-to-real assumes a Hermitian
// input and is undefined otherwise).
#include "src/backends/cuda/generator.h"

#include <algorithm>
#include <climits>

namespace kiln::backends::cuda::gen {

void Generator::Fft(int id) {
  const ir::Instruction& in = I(id);
  const auto& attrs = ir::Attr<ir::FftAttrs>(in);
  const int operand = in.operands[0];
  const shapes::Shape xs = I(operand).shape;
  const auto rank = static_cast<int64_t>(attrs.lengths.size());
  LibraryCall s;
  s.dtype = dtypes::IsComplex(xs.DType()) ? dtypes::RealPart(xs.DType()) : xs.DType();
  for (int64_t d = 0; d + rank < xs.Rank(); ++d) s.batch *= xs.Dims()[static_cast<size_t>(d)];
  int64_t total = 1, in_item = 1, out_item = 1;
  for (int64_t l : attrs.lengths) total *= l;
  for (int64_t d = xs.Rank() - rank; d < xs.Rank(); ++d) in_item *= xs.Dims()[static_cast<size_t>(d)];
  for (int64_t d = in.shape.Rank() - rank; d < in.shape.Rank(); ++d) out_item *= in.shape.Dims()[static_cast<size_t>(d)];
  // cuFFT's plans take ints: the points of a transform (as the CPU's FFTW
  // plans), the batch.
  if (std::max(in_item, out_item) > INT_MAX / 2 || s.batch > INT_MAX) {
    Unsupported(in, "exceeds cuFFT's int sizes (at most 2^30 points per transform)");
  }
  s.lengths = attrs.lengths;
  if (xs.Size() == 0) {  // an RFFT of empty rows keeps one frequency: zero
    Constant(id, false);
    return;
  }
  switch (attrs.type) {
    case ir::FftType::kFft:
    case ir::FftType::kIfft:
      s.kind = LibraryCall::Kind::kFft;
      s.inverse = attrs.type == ir::FftType::kIfft;
      p_.steps.push_back({StepKind::kKernel, id, Add(CopyOperand(id))});
      p_.steps.push_back({StepKind::kLibrary, id, AddLibraryCall(s)});
      if (s.inverse) p_.steps.push_back({StepKind::kUpdate, id, Add(ScaleInPlace(id, 1.0 / static_cast<double>(total)))});
      return;
    case ir::FftType::kRfft:
      s.kind = LibraryCall::Kind::kRfft;
      s.inputs = {operand};
      p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});  // allocates the output
      p_.steps.push_back({StepKind::kLibrary, id, AddLibraryCall(s)});
      return;
    case ir::FftType::kIrfft: {
      const int64_t n = attrs.lengths.back(), m = n / 2 + 1;
      // complex-to-real overwrites its input: a copy (the producers fused).
      const int half = AddScratch(xs);
      {
        KernelBuilder b(fn_, p_.materialized);
        const std::string v = b.Value(operand, LinearIdx("i"), true);
        const std::string body = b.Body() + "    out[i] = " + v + ";\n";
        p_.steps.push_back({StepKind::kKernel, half, Add(FinishScratch(b, half, "irfft_in", ThreadLoop("i", xs.Size(), body), xs.Size()))});
      }
      int64_t rows = s.batch;
      if (rank > 1) {
        LibraryCall lead = s;
        lead.kind = LibraryCall::Kind::kIrfftLead;
        lead.lengths.pop_back();
        lead.cols = m;
        for (int64_t l : lead.lengths) rows *= l;
        p_.steps.push_back({StepKind::kLibrary, half, AddLibraryCall(lead)});
      }
      // FFTW's complex-to-real (the CPU's) ignores the imaginary parts of
      // each row's DC term and, for an even n, of its Nyquist term; cuFFT's
      // is undefined where they are not zero: zeroed.
      {
        KernelBuilder b(fn_, p_.materialized);
        std::string body = "    out[r * " + Str(m) + "].im = 0;\n";
        if (n % 2 == 0) body += "    out[r * " + Str(m) + " + " + Str(m - 1) + "].im = 0;\n";
        p_.steps.push_back({StepKind::kUpdate, half, Add(Finish(b, half, "hermitian", ThreadLoop("r", rows, body), rows, false))});
      }
      if (rows > INT_MAX) Unsupported(in, "is larger than cuFFT's int sizes");
      s.kind = LibraryCall::Kind::kIrfft;
      s.lengths = {n};
      s.batch = rows;
      s.inputs = {half};
      p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});
      p_.steps.push_back({StepKind::kLibrary, id, AddLibraryCall(s)});
      p_.steps.push_back({StepKind::kUpdate, id, Add(ScaleInPlace(id, 1.0 / static_cast<double>(total)))});
      return;
    }
  }
  Unsupported(in, "has an unknown transform type");
}

// Multiplies value `id` (real or complex) by `factor` in place.
KernelSpec Generator::ScaleInPlace(int id, double factor) {
  const dtypes::DType dt = I(id).shape.DType();
  const bool complex = dtypes::IsComplex(dt);
  const std::string f = NumberLiteral(complex ? dtypes::RealPart(dt) : dt, factor);
  KernelBuilder b(fn_, p_.materialized);
  const std::string body = complex ? "    out[i] = kcMake(out[i].re * " + f + ", out[i].im * " + f + ");\n"
                                   : "    out[i] = out[i] * " + f + ";\n";
  KernelSpec spec = Finish(b, id, "scale", ThreadLoop("i", I(id).shape.Size(), body), I(id).shape.Size(), false);
  return spec;
}

}  // namespace kiln::backends::cuda::gen
