// Copyright 2026 The Kiln Authors.
// Shared test utilities: random inputs of every dtype, conversions to double
// for naive references, closeness checks, running a graph function on every
// available backend (the op conformance tests run each case on each),
// multi-index arithmetic for naive references, and a fixture for tests of
// graph-level error messages.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::testing {

/// Every backend available on this machine ("cpu", and "cuda" with a GPU).
std::vector<std::string> BackendNames();

/// backends::NewWithName, registering the CUDA emulator first when `name` is
/// "cuda-emu" (only the tests register it).
std::shared_ptr<backends::Backend> NewTestBackend(const std::string& name);
/// The backends of BackendNames() whose capabilities include `op` (for the
/// tests of ops some backends declare missing).
std::vector<std::string> BackendsSupporting(ir::OpType op);
/// backends::Available() as the registry's errors list it: "\"cpu\", \"cuda\"".
std::string QuotedAvailableBackends();
/// The address of the memory holding `t`'s value on `backend` (host memory
/// on the CPU, device memory on CUDA): equal across calls where a donated
/// value was updated in place. The value is moved to `backend` if it is not
/// there.
const void* BufferAddress(const tensors::Tensor& t, backends::Backend& backend);
/// A backend's name as a gtest parameter name ("cuda-emu" -> "cuda_emu").
std::string BackendParamName(const ::testing::TestParamInfo<std::string>& info);

/// A deterministic random generator for tests (fixed seed per call site is up to the caller).
using Rng = std::mt19937_64;

/// Random values of `shape`: floats (and both parts of complex numbers)
/// uniform in [lo, hi]; integers uniform in [lo, hi] clipped to the dtype's
/// range; Bool with p = 0.5.
tensors::Tensor Random(const shapes::Shape& shape, Rng& rng, double lo = -3, double hi = 3);
/// A Float64 tensor of `dims` uniform in [lo, hi], from a fixed seed.
inline tensors::Tensor Uniform(std::vector<int64_t> dims, double lo, double hi, uint64_t seed) {
  Rng rng(seed);
  return Random(shapes::Shape(dtypes::Float64, std::move(dims)), rng, lo, hi);
}

/// All values as doubles (any dtype; Bool as 0/1; complex values as
/// interleaved real and imaginary parts, two doubles per element).
std::vector<double> ToDoubles(const tensors::Tensor& t);
/// A tensor of `shape` from doubles, converted like a C++ static_cast (half
/// types round to nearest even); complex shapes take interleaved parts.
tensors::Tensor FromDoubles(const shapes::Shape& shape, const std::vector<double>& values);

/// Relative tolerance suitable for a dtype's elementwise results: 0 for
/// integers and Bool, ~1e-2 for Float16, ~1e-2 for BFloat16, 1e-5 Float32
/// (and Complex64), 1e-12 Float64 (and Complex128).
double Tolerance(dtypes::DType dtype);

/// Whether `got` matches `want` in shape and values: |got - want| <= atol +
/// rtol * |want|; NaN matches NaN; infinities must match exactly.
::testing::AssertionResult AllClose(const tensors::Tensor& got, const tensors::Tensor& want, double rtol,
                                    double atol);
/// AllClose with shape check against explicit expected doubles.
::testing::AssertionResult AllClose(const tensors::Tensor& got, const shapes::Shape& want_shape,
                                    const std::vector<double>& want, double rtol, double atol);

/// Builds a graph from `fn` with one parameter per argument, compiles it on
/// `backend` and runs it.
std::vector<tensors::Tensor> Run(const std::shared_ptr<backends::Backend>& backend,
                                 const std::function<std::vector<graph::Node>(const std::vector<graph::Node>&)>& fn,
                                 const std::vector<tensors::Tensor>& args);
/// Single-output convenience.
tensors::Tensor Run1(const std::shared_ptr<backends::Backend>& backend,
                     const std::function<graph::Node(const std::vector<graph::Node>&)>& fn,
                     const std::vector<tensors::Tensor>& args);

/// Asserts that `fn` throws kiln::Error whose message contains `substring`.
#define KILN_EXPECT_ERROR(statement, substring)                                                      \
  do {                                                                                               \
    try {                                                                                            \
      statement;                                                                                     \
      ADD_FAILURE() << "expected kiln::Error containing \"" << (substring) << "\"";                 \
    } catch (const ::kiln::Error& kiln_error_) {                                                     \
      EXPECT_NE(std::string(kiln_error_.what()).find(substring), std::string::npos) << kiln_error_.what(); \
    }                                                                                                \
  } while (0)

/// Sets an environment variable for the scope (unsets it where `value` is
/// null) and restores the old value (or unsets it) afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

/// Resident memory of this process in bytes (/proc/self/statm), for tests
/// that memory stays flat.
int64_t ResidentBytes();

/// Whether this build runs under AddressSanitizer or ThreadSanitizer, where
/// resident memory says nothing (ASan's quarantine keeps up to 256 MB of
/// freed blocks) and long loops run tens of times slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)  // GCC
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)  // Clang
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

/// Shapes used by conformance cases: scalars, size-0 axes, odd sizes that
/// exercise vector tails, and a size above the parallel threshold.
std::vector<shapes::Shape> TestShapes(dtypes::DType dtype);

// ------------------------------------------------------ Multi-index arithmetic.
// Naive row-major index helpers for the reference implementations.

/// The number of elements of an array of `dims` (1 for no dims, 0 if any is 0).
int64_t NumElements(const std::vector<int64_t>& dims);

/// Advances `index` to the next multi-index of `dims` in row-major order
/// (last axis fastest); returns false, with `index` back at all zeros, after
/// the last one. Visits every index of a non-empty `dims` (NumElements > 0):
///   std::vector<int64_t> index(dims.size(), 0);
///   do { ... } while (NextIndex(dims, index));
bool NextIndex(const std::vector<int64_t>& dims, std::vector<int64_t>& index);

/// The multi-index of row-major flat position `flat` in `dims`.
std::vector<int64_t> Unravel(int64_t flat, const std::vector<int64_t>& dims);

/// The row-major flat position of multi-index `index` in `dims` (the inverse of Unravel).
int64_t Ravel(const std::vector<int64_t>& index, const std::vector<int64_t>& dims);

// ------------------------------------------------------ Graph-level errors.

/// Fixture for tests of graph-level error messages: a graph `g_` and
/// Param(shape), which adds a parameter with a fresh name ("p0", "p1", ...).
class GraphErrorTest : public ::testing::Test {
 protected:
  graph::Node Param(const shapes::Shape& shape);

  std::unique_ptr<graph::Graph> g_ = graph::NewGraph("errors");

 private:
  int n_ = 0;
};

}  // namespace kiln::testing
