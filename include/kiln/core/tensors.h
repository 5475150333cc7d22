// Copyright 2026 The Kiln Authors.
// kiln::tensors::Tensor: a value on the host and/or on a backend's device.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/core/error.h"
#include "kiln/core/shapes.h"

namespace kiln::tensors {

namespace internal {
struct TensorImpl;
}

/// A multidimensional value. A cheap-to-copy handle: copies of a handle share
/// one value (like std::shared_ptr). The value lives on the host, on one
/// backend's device, or both; it moves lazily when read on the other side and
/// the copy is cached. Memory shared with other tensors or buffers (e.g. a
/// graph output aliasing its input) is copied before a write, so
/// MutableFlat() never changes another tensor's value.
class Tensor {
 public:
  /// An empty handle (Ok() is false).
  Tensor() = default;
  /// A zero-filled host tensor of `shape`.
  explicit Tensor(const shapes::Shape& shape);
  /// Wraps a device buffer (e.g. an output of Executable::Execute).
  static Tensor FromBuffer(backends::BufferPtr buffer);

  bool Ok() const { return impl_ != nullptr; }
  const shapes::Shape& Shape() const;
  dtypes::DType DType() const { return Shape().DType(); }
  int Rank() const { return Shape().Rank(); }
  int64_t Size() const { return Shape().Size(); }

  /// Converts to a C++ value: a scalar (`Value<float>()`), a flat vector for
  /// rank 1 (`Value<std::vector<float>>()`), nested vectors for higher ranks.
  /// Throws kiln::Error if T's element type or nesting depth does not match.
  template <typename T>
  T Value() const;

  /// Read-only view of the host data; T must match the dtype. The view
  /// lives as long as this handle's value: a device value's host copy is
  /// cached in the handle, so hold the tensor (not `v->Value().Flat<T>()`)
  /// while the view is used.
  template <typename T>
  std::span<const T> Flat() const;
  /// Writable view of the host data (copy-on-write; drops device copies).
  template <typename T>
  std::span<T> MutableFlat();
  /// Raw host data (ByteSize() bytes), fetched from the device if needed.
  const void* HostData() const;
  /// Raw writable host data (copy-on-write; drops device copies).
  void* MutableHostData();

  /// The value as a buffer of `backend`, transferring (and caching) if needed.
  backends::BufferPtr BufferFor(backends::Backend& backend) const;
  /// Removes the buffer from this tensor and returns it (for donation to an
  /// execution): afterwards this handle no longer holds a value on any side
  /// unless other copies of the value exist on host.
  backends::BufferPtr TakeBuffer(backends::Backend& backend);
  /// Whether the value is currently on the host / on `backend`.
  bool IsOnHost() const;
  bool IsOn(const backends::Backend& backend) const;

  /// "Float32[2, 3]{{1, 2, 3}, {4, 5, 6}}" (long tensors are elided).
  std::string ToString() const;

  /// A new, independent handle on the same data (no copy is made):
  /// donating or writing either handle never empties or changes the other,
  /// as memory shared by both is copied before a write.
  Tensor ShallowCopy() const;

  /// Whether both handles share one value.
  bool SameAs(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  void CheckDType(dtypes::DType want, const char* what) const;
  std::shared_ptr<internal::TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// A host tensor of `shape` holding a copy of `data` (Size() elements of T).
/// Throws kiln::Error if T does not match the dtype or the size differs.
template <typename T>
Tensor FromFlat(const shapes::Shape& shape, std::span<const T> data);
template <typename T>
Tensor FromFlat(const shapes::Shape& shape, const std::vector<T>& data) {
  return FromFlat<T>(shape, std::span<const T>(data));
}

/// A tensor from a C++ value: a scalar, a std::vector, or nested vectors
/// (rank = nesting depth). A ragged nested vector is a kiln::Error.
template <typename T>
Tensor FromValue(const T& value);

/// A zero-filled tensor.
inline Tensor Zeros(const shapes::Shape& shape) { return Tensor(shape); }

}  // namespace kiln::tensors

#include "kiln/core/tensors_impl.inc"
