// Copyright 2026 The Kiln Authors.
// Discrete Fourier transforms over the last 1 to 3 axes (numpy.fft and
// torch.fft's fft, ifft, rfft, irfft and their n-dimensional forms): one
// Fft op of the op set (StableHLO's fft), computed on the CPU by FFTW, with
// gradients of any order.
//
// Conventions are numpy's "backward" normalization: the forward transforms
// are unscaled, X[k] = sum_n x[n] exp(-2 pi i k n / N), and the inverses
// divide by N (the product of the transformed lengths), so IFFT(FFT(x)) == x.
#pragma once

#include <cstdint>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// The FFT of complex x over its last `num_axes` axes (1, 2 or 3).
Node FFT(Node x, int num_axes = 1, Loc loc = Loc::current());
/// The inverse of FFT (with the 1/N factor): complex in, complex out.
Node IFFT(Node x, int num_axes = 1, Loc loc = Loc::current());
/// The FFT of real x (Float32 or Float64) over its last `num_axes` axes, as a
/// complex value whose last axis keeps the n/2 + 1 non-negative frequencies
/// (the others are their conjugates).
Node RFFT(Node x, int num_axes = 1, Loc loc = Loc::current());
/// The inverse of RFFT: complex x whose last axis holds n/2 + 1 frequencies
/// gives a real value whose last axis has `length` = n elements (by default
/// 2 (m - 1) for a last axis of m: pass the odd length explicitly). The
/// imaginary parts of the zero and Nyquist frequencies are ignored, as in
/// numpy.fft.irfft.
Node IRFFT(Node x, int num_axes = 1, int64_t length = -1, Loc loc = Loc::current());

}  // namespace kiln::graph
