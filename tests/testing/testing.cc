// Copyright 2026 The Kiln Authors.
#include "tests/testing/testing.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <sstream>

#ifdef KILN_HAVE_CUDA
#include "src/backends/cuda/cuda_backend.h"
#include "src/backends/cuda/emulator.h"
#endif

namespace kiln::testing {

// KILN_TEST_BACKENDS=a,b runs the backend tests on those backends only
// ("cuda-emu" registers the CUDA emulator); by default on every available one.
std::vector<std::string> BackendNames() {
  const char* chosen = std::getenv("KILN_TEST_BACKENDS");
  if (chosen == nullptr || *chosen == '\0') return backends::Available();
  std::vector<std::string> names;
  std::stringstream list(chosen);
  for (std::string name; std::getline(list, name, ',');) {
    NewTestBackend(name);  // a clear error for a name that is not there
    names.push_back(name);
  }
  return names;
}

std::shared_ptr<backends::Backend> NewTestBackend(const std::string& name) {
#ifdef KILN_HAVE_CUDA
  if (name == "cuda-emu") backends::cuda::RegisterCudaEmulatorBackend();
#endif
  return backends::NewWithName(name);
}

const void* BufferAddress(const tensors::Tensor& t, backends::Backend& backend) {
  const backends::BufferPtr buffer = t.BufferFor(backend);
  if (const auto storage = buffer->SharedHostStorage(); storage != nullptr) return storage->Data();
#ifdef KILN_HAVE_CUDA
  if (const void* device = backends::cuda::DeviceAddress(*buffer); device != nullptr) return device;
#endif
  ADD_FAILURE() << "BufferAddress: no address for a buffer of " << backend.Name();
  return nullptr;
}

std::string QuotedAvailableBackends() {
  std::string list;
  for (const std::string& n : backends::Available()) list += (list.empty() ? "\"" : ", \"") + n + "\"";
  return list;
}

std::string BackendParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

std::vector<std::string> BackendsSupporting(ir::OpType op) {
  std::vector<std::string> names;
  for (const std::string& name : BackendNames()) {
    if (backends::NewWithName(name)->GetCapabilities().SupportsOp(op)) names.push_back(name);
  }
  return names;
}

namespace {
template <typename T>
double ToDouble(T v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return static_cast<double>(static_cast<float>(v));
  else return static_cast<double>(v);
}
template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return T(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bool>) return v != 0;
  else if constexpr (std::is_integral_v<T>) {
    // Saturating: a double beyond T's range (e.g. 2^64, which is what
    // UINT64_MAX rounds to) is undefined behaviour for static_cast.
    if (std::isnan(v)) return T{0};
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    if (v <= static_cast<double>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(v);
  }
}
}  // namespace

tensors::Tensor Random(const shapes::Shape& shape, Rng& rng, double lo, double hi) {
  const dtypes::DType dt = shape.DType();
  std::vector<double> values(static_cast<size_t>(shape.Size()) * (dtypes::IsComplex(dt) ? 2 : 1));
  if (dtypes::IsComplex(dt)) {  // both parts uniform in [lo, hi]
    std::uniform_real_distribution<double> d(lo, hi);
    for (auto& v : values) v = d(rng);
    return FromDoubles(shape, values);
  }
  DispatchDType(dt, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      std::bernoulli_distribution d(0.5);
      for (auto& v : values) v = d(rng);
    } else if constexpr (std::is_integral_v<T>) {
      double l = std::max(lo, static_cast<double>(std::numeric_limits<T>::lowest()));
      double h = std::min(hi, static_cast<double>(std::numeric_limits<T>::max()));
      std::uniform_int_distribution<int64_t> d(static_cast<int64_t>(std::ceil(l)), static_cast<int64_t>(std::floor(h)));
      for (auto& v : values) v = static_cast<double>(d(rng));
    } else {
      std::uniform_real_distribution<double> d(lo, hi);
      for (auto& v : values) v = d(rng);
    }
  });
  return FromDoubles(shape, values);
}

std::vector<double> ToDoubles(const tensors::Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.Size()) * (dtypes::IsComplex(t.DType()) ? 2 : 1));
  const void* data = t.HostData();
  if (t.DType() == dtypes::Complex64) {
    const float* p = static_cast<const float*>(data);
    for (size_t i = 0; i < out.size(); ++i) out[i] = p[i];
    return out;
  }
  if (t.DType() == dtypes::Complex128) {
    if (!out.empty()) std::memcpy(out.data(), data, out.size() * sizeof(double));
    return out;
  }
  DispatchDType(t.DType(), [&](auto zero) {
    using T = decltype(zero);
    const T* p = static_cast<const T*>(data);
    for (size_t i = 0; i < out.size(); ++i) out[i] = ToDouble(p[i]);
  });
  return out;
}

tensors::Tensor FromDoubles(const shapes::Shape& shape, const std::vector<double>& values) {
  tensors::Tensor t(shape);
  void* data = t.MutableHostData();
  if (dtypes::IsComplex(shape.DType())) {
    if (static_cast<int64_t>(values.size()) != 2 * shape.Size()) throw Error("FromDoubles: size mismatch");
    if (shape.DType() == dtypes::Complex128) {
      if (!values.empty()) std::memcpy(data, values.data(), values.size() * sizeof(double));
    } else {
      float* p = static_cast<float*>(data);
      for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<float>(values[i]);
    }
    return t;
  }
  if (static_cast<int64_t>(values.size()) != shape.Size()) throw Error("FromDoubles: size mismatch");
  DispatchDType(shape.DType(), [&](auto zero) {
    using T = decltype(zero);
    T* p = static_cast<T*>(data);
    for (size_t i = 0; i < values.size(); ++i) p[i] = FromDouble<T>(values[i]);
  });
  return t;
}

double Tolerance(dtypes::DType dtype) {
  switch (dtype) {
    case dtypes::Float16: return 2e-3;
    case dtypes::BFloat16: return 1.6e-2;
    case dtypes::Float32:
    case dtypes::Complex64: return 2e-6;
    case dtypes::Float64:
    case dtypes::Complex128: return 1e-13;
    default: return 0;
  }
}

::testing::AssertionResult AllClose(const tensors::Tensor& got, const shapes::Shape& want_shape,
                                    const std::vector<double>& want, double rtol, double atol) {
  if (got.Shape() != want_shape) {
    return ::testing::AssertionFailure() << "shape " << got.Shape() << " != expected " << want_shape;
  }
  std::vector<double> g = ToDoubles(got);
  int bad = 0;
  std::ostringstream msg;
  for (size_t i = 0; i < g.size(); ++i) {
    double a = g[i], b = want[i];
    bool ok;
    if (std::isnan(b)) ok = std::isnan(a);
    else if (std::isinf(b)) ok = a == b;
    else ok = std::isfinite(a) && std::abs(a - b) <= atol + rtol * std::abs(b);
    if (!ok && bad++ < 8) msg << "\n  at flat index " << i << ": got " << a << ", want " << b;
  }
  if (bad > 0) {
    return ::testing::AssertionFailure() << bad << " of " << g.size() << " values differ (rtol " << rtol << ", atol "
                                         << atol << ") for " << got.Shape() << ":" << msg.str();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult AllClose(const tensors::Tensor& got, const tensors::Tensor& want, double rtol,
                                    double atol) {
  if (got.DType() != want.DType()) {
    return ::testing::AssertionFailure() << "dtype " << got.DType() << " != expected " << want.DType();
  }
  return AllClose(got, want.Shape(), ToDoubles(want), rtol, atol);
}

std::vector<tensors::Tensor> Run(const std::shared_ptr<backends::Backend>& backend,
                                 const std::function<std::vector<graph::Node>(const std::vector<graph::Node>&)>& fn,
                                 const std::vector<tensors::Tensor>& args) {
  auto exec = graph::NewExec(backend, [&](const std::vector<graph::Node>& params) { return fn(params); }, "test");
  return exec.CallVector(args);
}

tensors::Tensor Run1(const std::shared_ptr<backends::Backend>& backend,
                     const std::function<graph::Node(const std::vector<graph::Node>&)>& fn,
                     const std::vector<tensors::Tensor>& args) {
  auto outs = Run(backend, [&](const std::vector<graph::Node>& p) { return std::vector<graph::Node>{fn(p)}; }, args);
  return outs.at(0);
}

ScopedEnv::ScopedEnv(const char* name, const char* value) : name_(name) {
  if (const char* old = std::getenv(name)) old_ = old;
  if (value != nullptr) ::setenv(name, value, 1);
  else ::unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (old_) ::setenv(name_, old_->c_str(), 1);
  else ::unsetenv(name_);
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

std::vector<shapes::Shape> TestShapes(dtypes::DType dtype) {
  return {shapes::Make(dtype), shapes::Make(dtype, 0), shapes::Make(dtype, 7), shapes::Make(dtype, 3, 0, 2),
          shapes::Make(dtype, 2, 3, 5), shapes::Make(dtype, 40000)};
}

int64_t NumElements(const std::vector<int64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
}

bool NextIndex(const std::vector<int64_t>& dims, std::vector<int64_t>& index) {
  for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
    if (++index[i] < dims[i]) return true;
    index[i] = 0;
  }
  return false;
}

std::vector<int64_t> Unravel(int64_t flat, const std::vector<int64_t>& dims) {
  std::vector<int64_t> index(dims.size());
  for (size_t i = dims.size(); i-- > 0;) {
    index[i] = flat % dims[i];
    flat /= dims[i];
  }
  return index;
}

int64_t Ravel(const std::vector<int64_t>& index, const std::vector<int64_t>& dims) {
  int64_t flat = 0;
  for (size_t i = 0; i < dims.size(); ++i) flat = flat * dims[i] + index[i];
  return flat;
}

graph::Node GraphErrorTest::Param(const shapes::Shape& shape) {
  std::string name = "p";
  name += std::to_string(n_++);  // (not "p" + ...: GCC 12 warns falsely, -Wrestrict)
  return graph::Parameter(g_.get(), name, shape);
}

}  // namespace kiln::testing
