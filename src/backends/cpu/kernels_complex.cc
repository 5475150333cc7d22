// Copyright 2026 The Kiln Authors.
// CPU kernels of Complex, Real and Imag: interleaving and splitting the two
// parts of complex values (std::complex's layout: real, then imaginary).
// The complex arithmetic itself is in kernels_elementwise.cc, the Fourier
// transforms in kernels_fft.cc.
#include <complex>
#include <cstdint>

#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

template <typename R>
Kernel ComplexKernel(int64_t n) {
  return [n](const void* const* in, void* out) {
    const R* re = static_cast<const R*>(in[0]);
    const R* im = static_cast<const R*>(in[1]);
    R* z = static_cast<R*>(out);  // std::complex<R> is an array of two R
#pragma omp parallel for if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      z[2 * i] = re[i];
      z[2 * i + 1] = im[i];
    }
  };
}

// Copies part `part` (0 real, 1 imaginary) of each complex element.
template <typename R>
Kernel PartKernel(int64_t n, int part) {
  return [n, part](const void* const* in, void* out) {
    const R* z = static_cast<const R*>(in[0]);
    R* y = static_cast<R*>(out);
#pragma omp parallel for if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) y[i] = z[2 * i + part];
  };
}

// Float32 parts or Float64 parts: the only complex dtypes.
template <template <typename> class Make, typename... Args>
Kernel ForParts(dtypes::DType real, const ir::Instruction& instr, Args... args) {
  if (real == dtypes::Float32) return Make<float>::Build(args...);
  if (real == dtypes::Float64) return Make<double>::Build(args...);
  Throw("cpu " + std::string(ir::OpName(instr.op)) + ": unsupported dtype " + instr.shape.ToString() + " (" +
        instr.location + ")");
}

template <typename R>
struct MakeComplex {
  static Kernel Build(int64_t n) { return ComplexKernel<R>(n); }
};
template <typename R>
struct MakePart {
  static Kernel Build(int64_t n, int part) { return PartKernel<R>(n, part); }
};

Kernel MakeComplexKernel(const ir::Function&, const ir::Instruction& instr) {
  return ForParts<MakeComplex>(dtypes::RealPart(instr.shape.DType()), instr, instr.shape.Size());
}

Kernel MakeRealOrImag(const ir::Function&, const ir::Instruction& instr) {
  return ForParts<MakePart>(instr.shape.DType(), instr, instr.shape.Size(), instr.op == ir::OpType::kImag ? 1 : 0);
}

}  // namespace

void RegisterComplexKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kComplex)] = MakeComplexKernel;
  table[static_cast<size_t>(ir::OpType::kReal)] = MakeRealOrImag;
  table[static_cast<size_t>(ir::OpType::kImag)] = MakeRealOrImag;
}

}  // namespace kiln::backends::cpu
