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

[[noreturn]] void Unsupported(const ir::Instruction& instr) {
  Throw("cpu " + std::string(ir::OpName(instr.op)) + ": unsupported dtype " + instr.shape.ToString() + " (" +
        instr.location + ")");
}

// The parts are Float32 or Float64: the only complex dtypes.
Kernel MakeComplexKernel(const ir::Function&, const ir::Instruction& instr) {
  const dtypes::DType real = dtypes::RealPart(instr.shape.DType());
  if (real == dtypes::Float32) return ComplexKernel<float>(instr.shape.Size());
  if (real == dtypes::Float64) return ComplexKernel<double>(instr.shape.Size());
  Unsupported(instr);
}

Kernel MakeRealOrImag(const ir::Function&, const ir::Instruction& instr) {
  const int part = instr.op == ir::OpType::kImag ? 1 : 0;
  if (instr.shape.DType() == dtypes::Float32) return PartKernel<float>(instr.shape.Size(), part);
  if (instr.shape.DType() == dtypes::Float64) return PartKernel<double>(instr.shape.Size(), part);
  Unsupported(instr);
}

}  // namespace

void RegisterComplexKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kComplex)] = MakeComplexKernel;
  table[static_cast<size_t>(ir::OpType::kReal)] = MakeRealOrImag;
  table[static_cast<size_t>(ir::OpType::kImag)] = MakeRealOrImag;
}

}  // namespace kiln::backends::cpu
