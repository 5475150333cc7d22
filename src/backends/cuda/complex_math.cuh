// Copyright 2026 The Kiln Authors.
// Complex arithmetic and elementary functions for the CUDA backend's
// generated kernels, with the CPU backend's semantics: std::complex's on
// glibc, which follow C99 Annex G (products and quotients that recover
// infinities; exp, log, sqrt, sin, cos and tanh with its special values of
// NaN, infinities and signed zeros), plus the CPU kernels' own Expm1, Log1p,
// Sign and Pow (0^0 = 1, 0^b = 0 for Re(b) > 0).
//
// One source compiled three ways: by NVRTC into the kernels that use complex
// values, by the host compiler in the CUDA emulator's modules, and by the
// host compiler in cuda_complex_math_test, which checks it against
// std::complex. It needs `__device__` and `__forceinline__` (empty on the
// host), `__longlong_as_double`, and the C math functions of float and
// double.
//
// A complex value is an aggregate {re, im} (std::complex's layout), so it
// can live in __shared__ memory; a function is `kc<Name>`, templated on the
// part type R (float for Complex64, double for Complex128).
//
// The code is the argument of KILN_CUDA_SOURCE, which prelude.cc defines to
// turn it into a string for the generated modules (comments are gone by
// then) and the test defines to the code itself; so no `#` directives and
// no unbalanced parentheses in it.
KILN_CUDA_SOURCE(

template <class R>
struct KCx {
  R re, im;
};
typedef KCx<float> kc64;
typedef KCx<double> kc128;

// ---------------------------------------------------------- Real helpers.
__device__ __forceinline__ float kcR_exp(float x) { return expf(x); }
__device__ __forceinline__ double kcR_exp(double x) { return exp(x); }
__device__ __forceinline__ float kcR_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double kcR_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float kcR_log(float x) { return logf(x); }
__device__ __forceinline__ double kcR_log(double x) { return log(x); }
__device__ __forceinline__ float kcR_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double kcR_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float kcR_sin(float x) { return sinf(x); }
__device__ __forceinline__ double kcR_sin(double x) { return sin(x); }
__device__ __forceinline__ float kcR_cos(float x) { return cosf(x); }
__device__ __forceinline__ double kcR_cos(double x) { return cos(x); }
__device__ __forceinline__ float kcR_sinh(float x) { return sinhf(x); }
__device__ __forceinline__ double kcR_sinh(double x) { return sinh(x); }
__device__ __forceinline__ float kcR_cosh(float x) { return coshf(x); }
__device__ __forceinline__ double kcR_cosh(double x) { return cosh(x); }
__device__ __forceinline__ float kcR_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double kcR_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float kcR_hypot(float x, float y) { return hypotf(x, y); }
__device__ __forceinline__ double kcR_hypot(double x, double y) { return hypot(x, y); }
__device__ __forceinline__ float kcR_atan2(float y, float x) { return atan2f(y, x); }
__device__ __forceinline__ double kcR_atan2(double y, double x) { return atan2(y, x); }
__device__ __forceinline__ float kcR_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double kcR_abs(double x) { return fabs(x); }
__device__ __forceinline__ float kcR_copysign(float x, float y) { return copysignf(x, y); }
__device__ __forceinline__ double kcR_copysign(double x, double y) { return copysign(x, y); }
__device__ __forceinline__ float kcR_fma(float x, float y, float z) { return fmaf(x, y, z); }
__device__ __forceinline__ double kcR_fma(double x, double y, double z) { return fma(x, y, z); }
template <class R> __device__ __forceinline__ R kcR_inf() { return (R)__longlong_as_double(0x7ff0000000000000LL); }
template <class R> __device__ __forceinline__ R kcR_nan() { return (R)__longlong_as_double(0x7ff8000000000000LL); }
template <class R> __device__ __forceinline__ bool kcR_isnan(R x) { return x != x; }
template <class R> __device__ __forceinline__ bool kcR_isinf(R x) { return kcR_abs(x) == kcR_inf<R>(); }
template <class R> __device__ __forceinline__ bool kcR_isfinite(R x) { return x - x == (R)0; }
// 1 with x's sign where x is infinite, 0 with its sign otherwise (Annex G's
// "box" of an infinite operand).
template <class R> __device__ __forceinline__ R kcR_box(R x) { return kcR_copysign(kcR_isinf(x) ? (R)1 : (R)0, x); }
// e^x c, without overflowing before the product does (e^x alone overflows
// past ~88.7 in float, ~709.8 in double): glibc's scaling.
template <class R> __device__ __forceinline__ R kcR_expmul(R x, R c) {
  if (x < (R)(sizeof(R) == 4 ? 80 : 700)) return kcR_exp(x) * c;
  const R h = kcR_exp(x / (R)2);
  return (h * c) * h;
}
// x, or 0 with its sign where it is NaN.
template <class R> __device__ __forceinline__ R kcR_unnan(R x) { return kcR_isnan(x) ? kcR_copysign((R)0, x) : x; }

// ------------------------------------------------------------ Arithmetic.
template <class R> __device__ __forceinline__ KCx<R> kcMake(R re, R im) { KCx<R> z; z.re = re; z.im = im; return z; }
template <class R> __device__ __forceinline__ KCx<R> operator+(KCx<R> a, KCx<R> b) { return kcMake(a.re + b.re, a.im + b.im); }
template <class R> __device__ __forceinline__ KCx<R> operator-(KCx<R> a, KCx<R> b) { return kcMake(a.re - b.re, a.im - b.im); }
template <class R> __device__ __forceinline__ KCx<R> operator-(KCx<R> a) { return kcMake(-a.re, -a.im); }
template <class R> __device__ __forceinline__ bool operator==(KCx<R> a, KCx<R> b) { return a.re == b.re && a.im == b.im; }
template <class R> __device__ __forceinline__ bool operator!=(KCx<R> a, KCx<R> b) { return !(a == b); }

// (a + bi)(c + di), recovering an infinite product that the formula turns
// into NaN + NaN i (Annex G's multiplication).
template <class R>
__device__ __forceinline__ KCx<R> operator*(KCx<R> x, KCx<R> y) {
  R a = x.re, b = x.im, c = y.re, d = y.im;
  const R ac = a * c, bd = b * d, ad = a * d, bc = b * c;
  R re = ac - bd, im = ad + bc;
  if (kcR_isnan(re) && kcR_isnan(im)) {
    bool recalc = false;
    if (kcR_isinf(a) || kcR_isinf(b)) {
      a = kcR_box(a), b = kcR_box(b), c = kcR_unnan(c), d = kcR_unnan(d);
      recalc = true;
    }
    if (kcR_isinf(c) || kcR_isinf(d)) {
      c = kcR_box(c), d = kcR_box(d), a = kcR_unnan(a), b = kcR_unnan(b);
      recalc = true;
    }
    if (!recalc && (kcR_isinf(ac) || kcR_isinf(bd) || kcR_isinf(ad) || kcR_isinf(bc))) {
      a = kcR_unnan(a), b = kcR_unnan(b), c = kcR_unnan(c), d = kcR_unnan(d);
      recalc = true;
    }
    if (recalc) re = kcR_inf<R>() * (a * c - b * d), im = kcR_inf<R>() * (a * d + b * c);
  }
  return kcMake(re, im);
}

template <class R> __device__ __forceinline__ KCx<double> kcWiden(KCx<R> z) { return kcMake((double)z.re, (double)z.im); }
// Rounds to float, beyond its range to infinity: what the GPU's conversion
// does, spelled out because the C++ standard leaves a plain cast of such a
// value undefined (the emulator and the test compile this for the host).
__device__ __forceinline__ float kcR_narrow(double x) {
  if (kcR_abs(x) >= 0x1.ffffffp127) return kcR_copysign(kcR_inf<float>(), (float)(x > 0 ? 1 : -1));
  return (float)x;
}
__device__ __forceinline__ KCx<float> kcNarrow(KCx<double> z) { return kcMake(kcR_narrow(z.re), kcR_narrow(z.im)); }

// (a + bi) / (c + di) by Smith's method (the larger of c, d divides, so no
// product overflows needlessly), recovering infinities and zeros as Annex G
// asks: x / 0 is infinite, infinite / finite is infinite, finite / infinite
// is zero. Complex64 quotients are computed in double, as GCC's runtime
// (__divsc3) computes them.
template <class R>
__device__ __forceinline__ KCx<R> kcDivIn(KCx<R> x, KCx<R> y) {
  R a = x.re, b = x.im, c = y.re, d = y.im;
  R re, im, denom;
  if (kcR_abs(c) < kcR_abs(d)) {
    const R ratio = c / d;
    denom = c * ratio + d;
    re = (a * ratio + b) / denom;
    im = (b * ratio - a) / denom;
  } else {
    const R ratio = d / c;
    denom = d * ratio + c;
    re = (b * ratio + a) / denom;
    im = (b - a * ratio) / denom;
  }
  if (kcR_isnan(re) && kcR_isnan(im)) {
    if (c == (R)0 && d == (R)0 && (!kcR_isnan(a) || !kcR_isnan(b))) {
      re = kcR_copysign(kcR_inf<R>(), c) * a;
      im = kcR_copysign(kcR_inf<R>(), c) * b;
    } else if ((kcR_isinf(a) || kcR_isinf(b)) && kcR_isfinite(c) && kcR_isfinite(d)) {
      a = kcR_box(a), b = kcR_box(b);
      re = kcR_inf<R>() * (a * c + b * d);
      im = kcR_inf<R>() * (b * c - a * d);
    } else if ((kcR_isinf(c) || kcR_isinf(d)) && kcR_isfinite(a) && kcR_isfinite(b)) {
      c = kcR_box(c), d = kcR_box(d);
      re = (R)0 * (a * c + b * d);
      im = (R)0 * (b * c - a * d);
    }
  }
  return kcMake(re, im);
}
template <class R>
__device__ __forceinline__ KCx<R> operator/(KCx<R> x, KCx<R> y) {
  if constexpr (sizeof(R) == 4) {
    return kcNarrow(kcDivIn(kcWiden(x), kcWiden(y)));
  } else {
    return kcDivIn(x, y);
  }
}

// ------------------------------------------------------------- Functions.
template <class R> __device__ __forceinline__ R kcAbs(KCx<R> z) { return kcR_hypot(z.re, z.im); }

// exp (Annex G's cexp); Complex64 in double, so that e^x cos y and
// e^x sin y are finite wherever they fit in a float (glibc's cexpf scales
// e^x to the same end).
template <class R>
__device__ __forceinline__ KCx<R> kcExpIn(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (kcR_isnan(x)) return kcMake(x, y == (R)0 ? y : kcR_nan<R>());
  if (kcR_isinf(x)) {
    if (x > (R)0) {
      if (y == (R)0) return z;
      if (!kcR_isfinite(y)) return kcMake(x, kcR_nan<R>());
      return kcMake(x * kcR_cos(y), x * kcR_sin(y));
    }
    if (!kcR_isfinite(y)) return kcMake((R)0, (R)0);
    return kcMake((R)0 * kcR_cos(y), (R)0 * kcR_sin(y));
  }
  if (!kcR_isfinite(y)) return kcMake(kcR_nan<R>(), kcR_nan<R>());
  if (y == (R)0) return kcMake(kcR_exp(x), y);
  return kcMake(kcR_expmul(x, kcR_cos(y)), kcR_expmul(x, kcR_sin(y)));
}
template <class R>
__device__ __forceinline__ KCx<R> kcExp(KCx<R> z) {
  if constexpr (sizeof(R) == 4) {
    return kcNarrow(kcExpIn(kcWiden(z)));
  } else {
    return kcExpIn(z);
  }
}

// log|z| + i arg z; near |z| = 1, log1p of |z|^2 - 1 computed exactly
// enough ((m - 1)(m + 1) + n^2 for m = max, n = min of the parts).
// Complex64 in double (as kcExp), which keeps a real part near 0 and the
// powers built on it within a few float roundings of glibc's.
template <class R>
__device__ __forceinline__ KCx<R> kcLogIn(KCx<R> z) {
  const R ax = kcR_abs(z.re), ay = kcR_abs(z.im);
  const R big = ax > ay ? ax : ay, small = ax > ay ? ay : ax;
  const R r = kcR_hypot(z.re, z.im);
  R re;
  if (r > (R)0.5 && r < (R)2 && kcR_isfinite(r)) {
    re = kcR_log1p(kcR_fma(big - (R)1, big + (R)1, small * small)) / (R)2;
  } else {
    re = kcR_log(r);
  }
  return kcMake(re, kcR_atan2(z.im, z.re));
}
template <class R>
__device__ __forceinline__ KCx<R> kcLog(KCx<R> z) {
  if constexpr (sizeof(R) == 4) {
    return kcNarrow(kcLogIn(kcWiden(z)));
  } else {
    return kcLogIn(z);
  }
}

// The principal square root (Annex G's csqrt): Re >= 0, Im with z's sign.
template <class R>
__device__ __forceinline__ KCx<R> kcSqrt(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (kcR_isinf(y)) return kcMake(kcR_inf<R>(), y);
  if (kcR_isnan(x)) return kcMake(x, kcR_nan<R>());
  if (kcR_isinf(x)) {
    if (x > (R)0) return kcMake(x, kcR_isnan(y) ? y : kcR_copysign((R)0, y));
    return kcMake(kcR_isnan(y) ? y : (R)0, kcR_copysign(kcR_inf<R>(), y));
  }
  if (kcR_isnan(y)) return kcMake(y, y);
  if (y == (R)0) {
    if (x < (R)0) return kcMake((R)0, kcR_copysign(kcR_sqrt(-x), y));
    return kcMake(kcR_abs(kcR_sqrt(x)), y);  // +0 for -0
  }
  // Halved before the sum, so |z| near the largest finite value does not
  // overflow.
  const R t = kcR_sqrt(kcR_abs(x) / (R)2 + kcR_hypot(x, y) / (R)2);
  if (x >= (R)0) return kcMake(t, y / ((R)2 * t));
  return kcMake(kcR_abs(y) / ((R)2 * t), kcR_copysign(t, y));
}

// sinh and cosh of x + iy (Annex G's csinh, ccosh); sin and cos are them
// at iz. Past |x| ~ 700, sinh x and cosh x are e^|x| / 2 (signed), which
// multiplies cos y and sin y without overflowing first.
template <class R>
__device__ __forceinline__ KCx<R> kcSinhIn(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (y == (R)0) return kcMake(kcR_sinh(x), y);
  if (kcR_isfinite(y)) {
    if (kcR_isnan(x)) return kcMake(x, kcR_nan<R>());
    if (kcR_abs(x) > (R)20) {
      const R ax = kcR_abs(x);
      return kcMake(kcR_copysign((R)1, x) * kcR_expmul(ax, kcR_cos(y) / (R)2), kcR_expmul(ax, kcR_sin(y) / (R)2));
    }
    return kcMake(kcR_sinh(x) * kcR_cos(y), kcR_cosh(x) * kcR_sin(y));
  }
  // y infinite or NaN
  if (x == (R)0) return kcMake(x, kcR_nan<R>());
  if (kcR_isinf(x)) return kcMake(x, kcR_nan<R>());
  return kcMake(kcR_nan<R>(), kcR_nan<R>());
}

template <class R>
__device__ __forceinline__ KCx<R> kcCoshIn(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (y == (R)0) return kcMake(kcR_cosh(x), kcR_copysign((R)0, x) * y);
  if (kcR_isfinite(y)) {
    if (kcR_isnan(x)) return kcMake(x, kcR_nan<R>());
    if (kcR_abs(x) > (R)20) {
      const R ax = kcR_abs(x);
      return kcMake(kcR_expmul(ax, kcR_cos(y) / (R)2), kcR_copysign((R)1, x) * kcR_expmul(ax, kcR_sin(y) / (R)2));
    }
    return kcMake(kcR_cosh(x) * kcR_cos(y), kcR_sinh(x) * kcR_sin(y));
  }
  if (x == (R)0) return kcMake(kcR_nan<R>(), (R)0);
  if (kcR_isinf(x)) return kcMake(kcR_inf<R>(), kcR_nan<R>());
  return kcMake(kcR_nan<R>(), kcR_nan<R>());
}

// sin z = -i sinh(iz), cos z = cosh(iz), with iz = -y + ix; Complex64 in
// double (as kcExp).
template <class R>
__device__ __forceinline__ KCx<R> kcSinIn(KCx<R> z) {
  // An infinite imaginary part with a real one that is not finite: glibc's
  // NaN + i∞ (Annex G leaves the sign unspecified).
  if (!kcR_isfinite(z.re) && kcR_isinf(z.im)) return kcMake(kcR_nan<R>(), kcR_inf<R>());
  const KCx<R> s = kcSinhIn(kcMake(-z.im, z.re));
  return kcMake(s.im, -s.re);
}
template <class R>
__device__ __forceinline__ KCx<R> kcSin(KCx<R> z) {
  if constexpr (sizeof(R) == 4) {
    return kcNarrow(kcSinIn(kcWiden(z)));
  } else {
    return kcSinIn(z);
  }
}
template <class R>
__device__ __forceinline__ KCx<R> kcCos(KCx<R> z) {
  if constexpr (sizeof(R) == 4) {
    return kcNarrow(kcCoshIn(kcMake(-(double)z.im, (double)z.re)));
  } else {
    return kcCoshIn(kcMake(-z.im, z.re));
  }
}

// tanh(x + iy) = (sinh 2x + i sin 2y) / (cosh 2x + cos 2y), evaluated as
// (sinh x cosh x + i sin y cos y) / (sinh^2 x + cos^2 y); for large |x| its
// limit sign(x) + 4i sin y cos y e^(-2|x|).
template <class R>
__device__ __forceinline__ KCx<R> kcTanh(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (kcR_isinf(x)) {
    const R im = kcR_isfinite(y) ? kcR_copysign((R)0, kcR_sin(y) * kcR_cos(y)) : kcR_copysign((R)0, y);
    return kcMake(kcR_copysign((R)1, x), im);
  }
  if (kcR_isnan(x)) return kcMake(x, y == (R)0 ? y : kcR_nan<R>());
  if (!kcR_isfinite(y)) return kcMake(x == (R)0 ? x : kcR_nan<R>(), kcR_nan<R>());
  const R sy = kcR_sin(y), cy = kcR_cos(y);
  if (kcR_abs(x) > (R)(sizeof(R) == 4 ? 9 : 22)) {
    return kcMake(kcR_copysign((R)1, x), (R)4 * sy * cy * kcR_exp((R)-2 * kcR_abs(x)));
  }
  const R sh = kcR_sinh(x), ch = kcR_cosh(x);
  const R den = sh * sh + cy * cy;
  return kcMake(sh * ch / den, sy * cy / den);
}

// exp(z) - 1 and log(1 + z) without cancellation near 0 (the CPU kernels'
// formulas; away from 0, exp and log).
template <class R>
__device__ __forceinline__ KCx<R> kcExpm1(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (y == (R)0) return kcMake(kcR_expm1(x), y);
  if (!(kcR_abs(x) <= (R)1) || !kcR_isfinite(y)) return kcExp(z) - kcMake((R)1, (R)0);
  const R half_sin = kcR_sin(y / (R)2);
  return kcMake(kcR_expm1(x) * kcR_cos(y) - (R)2 * half_sin * half_sin, kcR_exp(x) * kcR_sin(y));
}
template <class R>
__device__ __forceinline__ KCx<R> kcLog1p(KCx<R> z) {
  const R x = z.re, y = z.im;
  if (!(kcR_abs(x) < (R)0.5 && kcR_abs(y) < (R)0.5)) return kcLog(kcMake((R)1 + x, y));
  const R re = y == (R)0 ? kcR_log1p(x) : kcR_log1p(kcR_fma(y, y, x * ((R)2 + x))) / (R)2;
  return kcMake(re, kcR_atan2(y, (R)1 + x));
}

template <class R>
__device__ __forceinline__ KCx<R> kcRsqrt(KCx<R> z) { return kcMake((R)1, (R)0) / kcSqrt(z); }

// a^b = exp(b log a), but 0^0 = 1 and 0^b = 0 for Re(b) > 0. As glibc's
// cpowf: the product b log a rounded in the part type (the exponential
// magnifies its rounding, so a wider product would differ from the CPU's).
template <class R>
__device__ __forceinline__ KCx<R> kcPow(KCx<R> a, KCx<R> b) {
  if (a.re == (R)0 && a.im == (R)0) {
    if (b.re == (R)0 && b.im == (R)0) return kcMake((R)1, (R)0);
    if (b.re > (R)0) return kcMake((R)0, (R)0);
  }
  return kcExp(b * kcLog(a));
}

// z / |z| (0 stays 0, NaN gives NaN); an infinite z's direction's limit.
template <class R>
__device__ __forceinline__ KCx<R> kcSign(KCx<R> z) {
  if (kcR_isnan(z.re) || kcR_isnan(z.im)) return kcMake(kcR_nan<R>(), kcR_nan<R>());
  if (z.re == (R)0 && z.im == (R)0) return z;
  KCx<R> s;
  if (kcR_isinf(z.re) || kcR_isinf(z.im)) {
    s = kcMake(kcR_box(z.re), kcR_box(z.im));
  } else {
    const R m = kcR_abs(z.re) > kcR_abs(z.im) ? kcR_abs(z.re) : kcR_abs(z.im);
    s = kcMake(z.re / m, z.im / m);  // scaled first, so |s| neither overflows nor underflows
  }
  const R r = kcAbs(s);
  return kcMake(s.re / r, s.im / r);
}
)
