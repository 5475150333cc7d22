// Copyright 2026 The Kiln Authors.
#include "kiln/core/tensors.h"

#include <cstring>
#include <mutex>
#include <ostream>
#include <sstream>

namespace kiln::tensors {

namespace internal {

// Invariant: at least one of host / buffer holds the value (unless the
// buffer was taken for donation). When both are set they hold equal values.
struct TensorImpl {
  mutable std::mutex mu;
  shapes::Shape shape;
  mutable std::shared_ptr<backends::HostStorage> host;
  mutable backends::BufferPtr buffer;

  // Requires mu held.
  void EnsureHost() const {
    if (host) return;
    if (!buffer) Throw("Tensor " + shape.ToString() + " has no value: its buffer was donated to an execution");
    if (auto shared = buffer->SharedHostStorage()) {
      host = std::move(shared);
      return;
    }
    auto storage = backends::HostStorage::Allocate(static_cast<size_t>(shape.ByteSize()));
    buffer->CopyToHost(storage->Data());
    host = std::move(storage);
  }
};

}  // namespace internal

Tensor::Tensor(const shapes::Shape& shape) : impl_(std::make_shared<internal::TensorImpl>()) {
  if (!shape.Ok()) Throw("Tensor: shape with invalid dtype");
  impl_->shape = shape;
  impl_->host = backends::HostStorage::AllocateZeroed(static_cast<size_t>(shape.ByteSize()));
}

Tensor Tensor::FromBuffer(backends::BufferPtr buffer) {
  if (!buffer) Throw("Tensor::FromBuffer: null buffer");
  Tensor t;
  t.impl_ = std::make_shared<internal::TensorImpl>();
  t.impl_->shape = buffer->Shape();
  t.impl_->buffer = std::move(buffer);
  return t;
}

const shapes::Shape& Tensor::Shape() const {
  if (!impl_) Throw("Tensor: use of an empty Tensor handle");
  return impl_->shape;
}

void Tensor::CheckDType(dtypes::DType want, const char* what) const {
  if (Shape().DType() != want) {
    Throw(std::string("Tensor::") + what + ": tensor " + Shape().ToString() + " holds " +
          dtypes::Name(Shape().DType()) + ", not " + dtypes::Name(want));
  }
}

const void* Tensor::HostData() const {
  Shape();
  std::lock_guard lock(impl_->mu);
  impl_->EnsureHost();
  return impl_->host->Data();
}

void* Tensor::MutableHostData() {
  Shape();
  std::lock_guard lock(impl_->mu);
  impl_->EnsureHost();
  // Copy-on-write: another tensor or a CPU buffer may share this storage.
  if (impl_->host.use_count() > 1) {
    auto copy = backends::HostStorage::Allocate(impl_->host->Size());
    std::memcpy(copy->Data(), impl_->host->Data(), impl_->host->Size());
    impl_->host = std::move(copy);
  }
  impl_->buffer.reset();
  return impl_->host->Data();
}

backends::BufferPtr Tensor::BufferFor(backends::Backend& backend) const {
  Shape();
  std::lock_guard lock(impl_->mu);
  if (impl_->buffer && impl_->buffer->Owner() == &backend) return impl_->buffer;
  impl_->EnsureHost();
  impl_->buffer = backend.BufferFromHostStorage(impl_->shape, impl_->host);
  return impl_->buffer;
}

backends::BufferPtr Tensor::TakeBuffer(backends::Backend& backend) {
  backends::BufferPtr b = BufferFor(backend);
  std::lock_guard lock(impl_->mu);
  impl_->buffer.reset();
  impl_->host.reset();
  return b;
}

Tensor Tensor::ShallowCopy() const {
  Shape();
  Tensor t;
  t.impl_ = std::make_shared<internal::TensorImpl>();
  std::lock_guard lock(impl_->mu);
  t.impl_->shape = impl_->shape;
  t.impl_->host = impl_->host;
  t.impl_->buffer = impl_->buffer;
  return t;
}

bool Tensor::IsOnHost() const {
  Shape();
  std::lock_guard lock(impl_->mu);
  return impl_->host != nullptr;
}

bool Tensor::IsOn(const backends::Backend& backend) const {
  Shape();
  std::lock_guard lock(impl_->mu);
  return impl_->buffer && impl_->buffer->Owner() == &backend;
}

namespace {

template <typename T>
void PrintElement(std::ostream& os, T v) {
  if constexpr (std::is_same_v<T, bool>) os << (v ? "true" : "false");
  else if constexpr (sizeof(T) == 1 && std::is_integral_v<T>) os << static_cast<int>(v);
  else if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) os << static_cast<float>(v);
  else os << v;
}

template <typename T>
void PrintRecursive(std::ostream& os, const T* data, const std::vector<int64_t>& dims, int axis, int64_t& offset,
                    int64_t& printed) {
  constexpr int64_t kMaxPrinted = 64;
  if (axis == static_cast<int>(dims.size())) {
    if (printed++ < kMaxPrinted) PrintElement(os, data[offset]);
    ++offset;
    return;
  }
  os << '{';
  for (int64_t i = 0; i < dims[axis]; ++i) {
    if (i) os << ", ";
    if (printed >= kMaxPrinted) {
      os << "...";
      int64_t rest = 1;
      for (size_t a = axis; a < dims.size(); ++a) rest *= dims[a];
      offset += rest / dims[axis] * (dims[axis] - i);
      break;
    }
    PrintRecursive(os, data, dims, axis + 1, offset, printed);
  }
  os << '}';
}

}  // namespace

std::string Tensor::ToString() const {
  if (!impl_) return "Tensor(empty)";
  std::ostringstream os;
  os << Shape().ToString();
  const void* data = HostData();
  DispatchDTypeWithComplex(DType(), [&](auto zero) {
    using T = decltype(zero);
    int64_t offset = 0, printed = 0;
    if (Size() == 0) {
      // No element: "{}" whatever the dimensions (a [2^32, 2^32, 0] tensor is
      // legitimate, and printing its empty rows would never end).
      os << "{}";
    } else if (Rank() == 0) {
      os << '(';
      PrintElement(os, *static_cast<const T*>(data));
      os << ')';
    } else {
      PrintRecursive(os, static_cast<const T*>(data), Shape().Dims(), 0, offset, printed);
    }
  });
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.ToString(); }

}  // namespace kiln::tensors
