// Copyright 2026 The Kiln Authors.
// kiln::backends: the interface every backend implements, and the registry
// that picks one.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/shapes.h"
#include "kiln/ir/function.h"

namespace kiln::backends {

class Backend;

/// A block of host memory, 64-byte aligned, shared between tensors and the
/// CPU backend's buffers so that handing a host tensor to the CPU backend
/// copies nothing. Large freed blocks are cached by size and reused (up to
/// 1 GiB), so repeated steps do not pay page faults for fresh memory.
class HostStorage {
 public:
  /// Allocates `bytes` bytes (uninitialized); throws kiln::Error if out of memory.
  static std::shared_ptr<HostStorage> Allocate(size_t bytes);
  /// Allocates and zero-fills.
  static std::shared_ptr<HostStorage> AllocateZeroed(size_t bytes);
  ~HostStorage();
  HostStorage(const HostStorage&) = delete;
  HostStorage& operator=(const HostStorage&) = delete;

  void* Data() { return data_; }
  const void* Data() const { return data_; }
  size_t Size() const { return size_; }

 private:
  HostStorage(void* data, size_t size, size_t capacity) : data_(data), size_(size), capacity_(capacity) {}
  void* data_;
  size_t size_;
  size_t capacity_;  // the block's allocated size (blocks are recycled by size)
};

/// A value living on a backend's device. Immutable once created, except when
/// donated to Executable::Execute.
class Buffer {
 public:
  virtual ~Buffer() = default;
  const shapes::Shape& Shape() const { return shape_; }
  /// The backend that owns the memory.
  Backend* Owner() const { return owner_; }
  /// Copies the value into `dst` (Shape().ByteSize() bytes).
  virtual void CopyToHost(void* dst) const = 0;
  /// For backends whose memory is host memory: the storage itself, so tensors
  /// can read it without a copy. nullptr otherwise.
  virtual std::shared_ptr<HostStorage> SharedHostStorage() const { return nullptr; }

 protected:
  Buffer(Backend* owner, shapes::Shape shape) : owner_(owner), shape_(std::move(shape)) {}

 private:
  Backend* owner_;
  shapes::Shape shape_;
};

using BufferPtr = std::shared_ptr<Buffer>;

/// A compiled function, ready to run many times. Execute is thread-safe.
class Executable {
 public:
  virtual ~Executable() = default;
  /// Runs the function on `args` (one per parameter, matching shapes) and
  /// returns one buffer per output. donate[i] == true hands args[i] over: the
  /// executable may reuse its memory for an output (in-place update), and the
  /// caller must not use that buffer again. `donate` may be empty.
  virtual std::vector<BufferPtr> Execute(std::vector<BufferPtr> args, const std::vector<bool>& donate) = 0;
  /// The function this executable was compiled from.
  virtual const ir::Function& Function() const = 0;
};

/// What a backend can run.
struct Capabilities {
  std::vector<bool> ops = std::vector<bool>(ir::kNumOpTypes, false);  // indexed by OpType
  std::vector<bool> dtypes = std::vector<bool>(16, false);           // indexed by DType
  bool SupportsOp(ir::OpType op) const { return ops[static_cast<size_t>(op)]; }
  bool SupportsDType(dtypes::DType dt) const { return dtypes[static_cast<size_t>(dt)]; }
  /// For a backend implementing Attention: the key length from which
  /// layers::DotProductAttention emits it instead of the composed ops
  /// (products, masked softmax), i.e. where the fused kernel is faster or
  /// the score matrix too large to hold.
  int64_t fused_attention_min_kv_length = 0;
};

/// A connection to some hardware: owns device memory, compiles and runs
/// functions of the op set, moves data between host and device.
class Backend {
 public:
  virtual ~Backend() = default;
  /// Short name used by NewWithName and KILN_BACKEND: "cpu", "cuda".
  virtual std::string Name() const = 0;
  /// Human readable description (device, threads...).
  virtual std::string Description() const = 0;
  /// The ops and dtypes this backend implements.
  virtual const Capabilities& GetCapabilities() const = 0;
  /// Copies `shape.ByteSize()` bytes from `data` into a new device buffer.
  virtual BufferPtr BufferFromHost(const shapes::Shape& shape, const void* data) = 0;
  /// Like BufferFromHost, but may adopt `storage` without copying (the CPU
  /// backend does). The default copies.
  virtual BufferPtr BufferFromHostStorage(const shapes::Shape& shape, std::shared_ptr<HostStorage> storage) {
    return BufferFromHost(shape, storage->Data());
  }
  /// Compiles a whole function. Throws kiln::Error for unsupported ops/dtypes.
  virtual std::unique_ptr<Executable> Compile(std::shared_ptr<const ir::Function> function) = 0;
};

/// How a backend makes itself known to New()/NewWithName().
struct Registration {
  std::string name;
  /// Higher is preferred by New() (the built-in CPU backend has 10; a GPU
  /// backend would register above it).
  int priority = 0;
  /// Whether the hardware is present (e.g. a GPU is visible).
  std::function<bool()> is_available;
  std::function<std::shared_ptr<Backend>()> create;
  /// Optional: why the backend is unavailable ("no NVIDIA driver", ...), for
  /// NewWithName's message.
  std::function<std::string()> unavailable_reason;
  /// Optional: creates the backend for a configuration given after a colon
  /// in the name ("cuda:1" passes "1"); without it such names are an error.
  std::function<std::shared_ptr<Backend>(const std::string& config)> create_with_config;
};

/// Registers a backend; a second registration under the same name replaces the first.
void Register(Registration registration);

/// The backend named by the environment variable KILN_BACKEND if set, else the
/// available backend with the highest priority: "cuda" (built when the CUDA
/// toolkit is found, available when a usable NVIDIA GPU is present) before
/// "cpu" (always available).
std::shared_ptr<Backend> New();

/// The backend with this name; "name:config" passes a configuration (the
/// device: "cuda:1"). Throws kiln::Error for an unknown or unavailable name,
/// saying why it is unavailable and listing the available ones.
std::shared_ptr<Backend> NewWithName(const std::string& name);

/// Names of the registered backends that are available on this machine.
std::vector<std::string> Available();

}  // namespace kiln::backends
