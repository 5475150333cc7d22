// Copyright 2026 The Kiln Authors.
// The GGUF reader (see kiln/io/gguf.h): a bounds-checked cursor over the
// mapped file parses the header, the metadata and the tensor list; Get
// copies or dequantizes one tensor.
#include "kiln/io/gguf.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>

#include "src/io/mapped_file.h"

namespace kiln::io::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF reading assumes a little-endian host");

namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& message) {
  Throw("GGUF file " + path + ": " + message);
}

// ggml's tensor types that Kiln reads (their numbers in the file).
enum GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kQ4_K = 12, kQ6_K = 14, kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27,
  kF64 = 28, kBF16 = 30,
};

// Q8_0: blocks of 32 values, an F16 scale then 32 int8. Q4_0: blocks of 32
// values, an F16 scale then 16 bytes of two 4-bit values each (value j in
// the low nibble of byte j, value j + 16 in its high nibble), offset by 8.
constexpr int64_t kBlock = 32;
constexpr int64_t kQ8Bytes = 2 + 32, kQ4Bytes = 2 + 16;
// The K-quants: super-blocks of 256 values.
//   Q4_K (144 bytes): F16 d, F16 dmin, 12 bytes of eight 6-bit scales and
//     eight 6-bit mins, 128 bytes of 4-bit values. Values 64g .. 64g + 31 are
//     the low nibbles of bytes 32g .. 32g + 31 (sub-block 2g), the next 32
//     their high nibbles (sub-block 2g + 1); value = d sc q - dmin m.
//     Scales and mins 0-3 are the low 6 bits of bytes 0-3 and 4-7; 4-7 keep
//     their low 4 bits in bytes 8-11 (scale low nibble, min high nibble) and
//     their top 2 bits in the top bits of bytes 0-3 (scales) and 4-7 (mins).
//   Q6_K (210 bytes): 128 bytes of low 4 bits, 64 bytes of high 2 bits,
//     sixteen int8 scales, F16 d. In each half h of 128 values, value
//     128h + 32k + l (k = 0..3) takes its low bits from byte 64h + l (k = 0, 2)
//     or 64h + 32 + l (k = 1, 3), low nibble for k < 2, high for k >= 2; its
//     high bits from bits 2k, 2k+1 of byte 128 + 32h + l; its scale is
//     scales[8h + l / 16 + 2k]; value = d scale (q - 32).
constexpr int64_t kSuperBlock = 256;
constexpr int64_t kQ4KBytes = 144, kQ6KBytes = 210;

// Bytes per block and values per block of the quantized types Kiln reads.
struct Blocks {
  int64_t values = 0, bytes = 0;
};
Blocks BlocksOf(uint32_t type) {
  switch (type) {
    case kQ8_0: return {kBlock, kQ8Bytes};
    case kQ4_0: return {kBlock, kQ4Bytes};
    case kQ4_K: return {kSuperBlock, kQ4KBytes};
    case kQ6_K: return {kSuperBlock, kQ6KBytes};
    default: return {};
  }
}

std::string TypeNameOf(uint32_t type) {
  static const char* const kNames[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
                                       "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
                                       "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
                                       "IQ4_XS", "I8",   "I16",  "I32",  "I64",  "F64",  "IQ1_M", "BF16"};
  return type < std::size(kNames) ? kNames[type] : "type " + std::to_string(type);
}

// The dtype Get returns for a type Kiln reads, else Invalid.
dtypes::DType DTypeOf(uint32_t type) {
  switch (type) {
    case kF32:
    case kQ8_0:
    case kQ4_0:
    case kQ4_K:
    case kQ6_K: return dtypes::Float32;
    case kF16: return dtypes::Float16;
    case kBF16: return dtypes::BFloat16;
    case kF64: return dtypes::Float64;
    case kI8: return dtypes::Int8;
    case kI16: return dtypes::Int16;
    case kI32: return dtypes::Int32;
    case kI64: return dtypes::Int64;
    default: return dtypes::Invalid;
  }
}

// Reads little-endian values from [data, data + size), each read checked.
// A read names what it reads (`what`, plus an optional suffix) only when it
// fails: the messages are never built on the way.
class Cursor {
 public:
  Cursor(const std::string& path, const std::byte* data, uint64_t size) : path_(path), data_(data), size_(size) {}

  uint64_t Position() const { return pos_; }
  uint64_t Remaining() const { return size_ - pos_; }

  void Need(uint64_t n, const std::string& what, const char* suffix = "") const {
    if (n > Remaining()) {
      Fail(path_, "truncated: " + what + suffix + " needs " + std::to_string(n) + " bytes at offset " +
                      std::to_string(pos_) + ", the file has " + std::to_string(Remaining()) + " more");
    }
  }
  template <typename T>
  T Read(const std::string& what, const char* suffix = "") {
    Need(sizeof(T), what, suffix);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string String(const std::string& what) {
    const uint64_t n = Read<uint64_t>(what, " length");
    Need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::string& path_;
  const std::byte* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

constexpr int kMaxArrayDepth = 8;
// Arrays hold at most this many values (a tokenizer's vocabulary has a few
// hundred thousand): each costs ~48 bytes in memory, so a count taken from a
// hostile file must not size memory beyond a bound.
constexpr uint64_t kMaxArrayLength = uint64_t{1} << 24;

// `what` is "metadata \"<key>\"", built once per key.
Value ReadValue(Cursor& c, const std::string& path, const std::string& what, uint32_t type, int depth) {
  using T = Value::Type;
  switch (static_cast<T>(type)) {
    case T::kUint8: return {T::kUint8, uint64_t{c.Read<uint8_t>(what)}};
    case T::kInt8: return {T::kInt8, int64_t{c.Read<int8_t>(what)}};
    case T::kUint16: return {T::kUint16, uint64_t{c.Read<uint16_t>(what)}};
    case T::kInt16: return {T::kInt16, int64_t{c.Read<int16_t>(what)}};
    case T::kUint32: return {T::kUint32, uint64_t{c.Read<uint32_t>(what)}};
    case T::kInt32: return {T::kInt32, int64_t{c.Read<int32_t>(what)}};
    case T::kUint64: return {T::kUint64, c.Read<uint64_t>(what)};
    case T::kInt64: return {T::kInt64, c.Read<int64_t>(what)};
    case T::kFloat32: return {T::kFloat32, double{c.Read<float>(what)}};
    case T::kFloat64: return {T::kFloat64, c.Read<double>(what)};
    case T::kBool: {
      const uint8_t b = c.Read<uint8_t>(what);
      if (b > 1) Fail(path, what + ": a bool of value " + std::to_string(b));
      return {T::kBool, b == 1};
    }
    case T::kString: return {T::kString, c.String(what)};
    case T::kArray: {
      if (depth >= kMaxArrayDepth) Fail(path, what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      const uint32_t element = c.Read<uint32_t>(what, " element type");
      const uint64_t count = c.Read<uint64_t>(what, " length");
      // Every element takes at least one byte of the file.
      if (count > c.Remaining() || count > kMaxArrayLength) {
        Fail(path, what + ": an array of " + std::to_string(count) + " elements (at most " +
                       std::to_string(std::min(c.Remaining(), kMaxArrayLength)) + " here)");
      }
      std::vector<Value> values;
      values.reserve(static_cast<size_t>(std::min<uint64_t>(count, 4096)));  // grows with what is read
      for (uint64_t i = 0; i < count; ++i) values.push_back(ReadValue(c, path, what, element, depth + 1));
      return {T::kArray, std::move(values)};
    }
  }
  Fail(path, what + ": unknown value type " + std::to_string(type));
}

struct TensorInfo {
  std::string name;
  uint32_t type = 0;
  std::vector<int64_t> ne;  // ggml order: innermost first
  uint64_t offset = 0;      // from the start of the data section
  int64_t elements = 1;
  shapes::Shape shape;      // Kiln's: dtype Get returns (Invalid if unread), outermost first
};

}  // namespace

// ------------------------------------------------------------------ Value.

int64_t Value::AsInt() const {
  if (const auto* v = std::get_if<int64_t>(&data_)) return *v;
  if (const auto* v = std::get_if<uint64_t>(&data_)) {
    if (*v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) Throw("GGUF value: uint64 beyond int64");
    return static_cast<int64_t>(*v);
  }
  Throw("GGUF value: not an integer");
}
double Value::AsFloat() const {
  if (const auto* v = std::get_if<double>(&data_)) return *v;
  if (const auto* v = std::get_if<int64_t>(&data_)) return static_cast<double>(*v);
  if (const auto* v = std::get_if<uint64_t>(&data_)) return static_cast<double>(*v);
  Throw("GGUF value: not a number");
}
bool Value::AsBool() const {
  if (const auto* v = std::get_if<bool>(&data_)) return *v;
  Throw("GGUF value: not a bool");
}
const std::string& Value::AsString() const {
  if (const auto* v = std::get_if<std::string>(&data_)) return *v;
  Throw("GGUF value: not a string");
}
const std::vector<Value>& Value::AsArray() const {
  if (const auto* v = std::get_if<std::vector<Value>>(&data_)) return *v;
  Throw("GGUF value: not an array");
}

// ------------------------------------------------------------------- File.

struct File::Impl {
  std::string path;
  std::unique_ptr<io::internal::MappedFile> file;
  uint32_t version = 0;
  uint64_t data_start = 0;
  std::map<std::string, Value> metadata;
  std::vector<TensorInfo> tensors;
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index;

  const TensorInfo& Find(const std::string& name) const {
    auto it = index.find(name);
    if (it == index.end()) Fail(path, "no tensor \"" + name + "\"");
    return tensors[it->second];
  }
};

File File::Open(const std::string& path) {
  try {
    return OpenChecked(path);
  } catch (const std::bad_alloc&) {
    Fail(path, "out of memory reading its metadata and tensor list");
  }
}

File File::OpenChecked(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->file = std::make_unique<io::internal::MappedFile>(path, "GGUF", 0);
  Cursor c(impl->path, impl->file->Data(), impl->file->Size());
  const uint32_t magic = c.Read<uint32_t>("the magic number");
  if (magic != 0x46554747) Fail(path, "not a GGUF file (it does not start with \"GGUF\")");
  impl->version = c.Read<uint32_t>("the version");
  if (impl->version != 2 && impl->version != 3) {
    Fail(path, "version " + std::to_string(impl->version) + " is not supported (versions 2 and 3 are)");
  }
  const uint64_t tensor_count = c.Read<uint64_t>("the tensor count");
  const uint64_t kv_count = c.Read<uint64_t>("the metadata count");
  if (tensor_count > c.Remaining() || kv_count > c.Remaining()) {
    Fail(path, std::to_string(tensor_count) + " tensors and " + std::to_string(kv_count) +
                   " metadata entries cannot fit in the file");
  }
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = c.String("metadata key #" + std::to_string(i));
    const std::string what = "metadata \"" + key + "\"";
    const uint32_t type = c.Read<uint32_t>(what, " type");
    Value value = ReadValue(c, path, what, type, 0);
    if (!impl->metadata.emplace(key, std::move(value)).second) Fail(path, "metadata \"" + key + "\" appears twice");
  }
  uint64_t alignment = 32;
  if (auto it = impl->metadata.find("general.alignment"); it != impl->metadata.end()) {
    const bool integer = it->second.GetType() == Value::Type::kUint32;
    alignment = integer ? static_cast<uint64_t>(it->second.AsInt()) : 0;
    if (!integer || alignment == 0 || (alignment & (alignment - 1)) != 0) {
      Fail(path, "general.alignment must be a uint32 power of two");
    }
  }
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo t;
    t.name = c.String("tensor name #" + std::to_string(i));
    const std::string what = "tensor \"" + t.name + "\"";
    const uint32_t dims = c.Read<uint32_t>(what + " rank");
    if (dims > 8) Fail(path, what + ": rank " + std::to_string(dims) + " (at most 8)");
    bool overflow = false;
    for (uint32_t d = 0; d < dims; ++d) {
      const uint64_t n = c.Read<uint64_t>(what + " dimension");
      if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) Fail(path, what + ": dimension too large");
      t.ne.push_back(static_cast<int64_t>(n));
      overflow |= __builtin_mul_overflow(t.elements, static_cast<int64_t>(n), &t.elements);
    }
    if (overflow) Fail(path, what + ": its element count overflows");
    t.type = c.Read<uint32_t>(what + " type");
    t.offset = c.Read<uint64_t>(what + " offset");
    if (t.offset % alignment != 0) {
      Fail(path, what + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                     std::to_string(alignment));
    }
    std::vector<int64_t> kiln_dims(t.ne.rbegin(), t.ne.rend());
    try {  // (a shape of more than 2^63 bytes is refused by Shape)
      t.shape = shapes::Shape(DTypeOf(t.type) == dtypes::Invalid ? dtypes::Uint8 : DTypeOf(t.type), kiln_dims);
    } catch (const Error& e) {
      Fail(path, what + ": " + e.what());
    }
    if (!impl->index.emplace(t.name, impl->tensors.size()).second) Fail(path, what + " appears twice");
    impl->names.push_back(t.name);
    impl->tensors.push_back(std::move(t));
  }
  impl->data_start = (c.Position() + alignment - 1) / alignment * alignment;
  const uint64_t size = impl->file->Size();
  if (impl->data_start > size) Fail(path, "the data section starts beyond the file's end");
  // Every tensor Kiln reads must lie within the data.
  for (const TensorInfo& t : impl->tensors) {
    const std::string what = "tensor \"" + t.name + "\"";
    const dtypes::DType dtype = DTypeOf(t.type);
    if (dtype == dtypes::Invalid) continue;  // listed; Get refuses it
    uint64_t bytes = 0;
    if (const Blocks b = BlocksOf(t.type); b.values > 0) {
      const int64_t row = t.ne.empty() ? 1 : t.ne[0];
      if (row % b.values != 0) {
        Fail(path, what + ": " + TypeNameOf(t.type) + " rows of " + std::to_string(row) +
                       " values are not whole blocks of " + std::to_string(b.values));
      }
      bytes = static_cast<uint64_t>(t.elements / b.values) * static_cast<uint64_t>(b.bytes);  // < elements
    } else if (__builtin_mul_overflow(static_cast<uint64_t>(t.elements), dtypes::SizeOf(dtype), &bytes)) {
      Fail(path, what + ": its byte size overflows");
    }
    const uint64_t room = size - impl->data_start;
    if (t.offset > room || bytes > room - t.offset) {
      Fail(path, what + ": data [" + std::to_string(t.offset) + ", +" + std::to_string(bytes) +
                     ") lies beyond the end of the data section (" + std::to_string(room) + " bytes)");
    }
  }
  return File(std::move(impl));
}

const std::string& File::Path() const { return impl_->path; }
uint32_t File::Version() const { return impl_->version; }
const std::map<std::string, Value>& File::Metadata() const { return impl_->metadata; }
const std::vector<std::string>& File::Names() const { return impl_->names; }
bool File::Contains(const std::string& name) const { return impl_->index.contains(name); }
const shapes::Shape& File::ShapeOf(const std::string& name) const {
  const TensorInfo& t = impl_->Find(name);
  if (DTypeOf(t.type) == dtypes::Invalid) {
    Fail(impl_->path, "tensor \"" + name + "\" has ggml type " + TypeNameOf(t.type) + ", which Kiln does not read");
  }
  return t.shape;
}
std::string File::TypeName(const std::string& name) const { return TypeNameOf(impl_->Find(name).type); }

tensors::Tensor File::Get(const std::string& name) const {
  const TensorInfo& t = impl_->Find(name);
  const dtypes::DType dtype = DTypeOf(t.type);
  if (dtype == dtypes::Invalid) {
    Fail(impl_->path, "tensor \"" + name + "\" has ggml type " + TypeNameOf(t.type) +
                          ", which Kiln does not read (F32, F16, BF16, F64, I8-I64, Q8_0, Q4_0, Q4_K, Q6_K)");
  }
  tensors::Tensor out(t.shape);
  const std::byte* src = impl_->file->Data() + impl_->data_start + t.offset;
  const Blocks b = BlocksOf(t.type);
  if (b.values == 0) {
    const auto bytes = static_cast<size_t>(t.shape.ByteSize());
    if (bytes > 0) std::memcpy(out.MutableHostData(), src, bytes);
    return out;
  }
  float* y = out.MutableFlat<float>().data();
  auto half = [](const std::byte* p) {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    return static_cast<float>(float16::FromBits(bits));
  };
  auto byte = [](const std::byte* p, int64_t i) { return static_cast<uint8_t>(p[i]); };
  for (int64_t blk = 0; blk < t.elements / b.values; ++blk) {
    const std::byte* in = src + blk * b.bytes;
    float* out_block = y + blk * b.values;
    switch (t.type) {
      case kQ8_0: {
        const float d = half(in);
        for (int64_t j = 0; j < kBlock; ++j) out_block[j] = d * static_cast<float>(static_cast<int8_t>(in[2 + j]));
        break;
      }
      case kQ4_0: {
        const float d = half(in);
        for (int64_t j = 0; j < kBlock / 2; ++j) {
          const uint8_t q = byte(in, 2 + j);
          out_block[j] = d * static_cast<float>((q & 0x0F) - 8);
          out_block[j + kBlock / 2] = d * static_cast<float>((q >> 4) - 8);
        }
        break;
      }
      case kQ4_K: {
        const float d = half(in), dmin = half(in + 2);
        const std::byte* packed = in + 4;  // 12 bytes of scales and mins
        const std::byte* qs = in + 16;
        for (int sub = 0; sub < 8; ++sub) {
          int scale, min;
          if (sub < 4) {
            scale = byte(packed, sub) & 63;
            min = byte(packed, sub + 4) & 63;
          } else {
            scale = (byte(packed, sub + 4) & 0x0F) | ((byte(packed, sub - 4) >> 6) << 4);
            min = (byte(packed, sub + 4) >> 4) | ((byte(packed, sub) >> 6) << 4);
          }
          const float ds = d * static_cast<float>(scale), dm = dmin * static_cast<float>(min);
          const int group = sub / 2, shift = (sub % 2) * 4;
          for (int l = 0; l < 32; ++l) {
            const int q = (byte(qs, 32 * group + l) >> shift) & 0x0F;
            out_block[32 * sub + l] = ds * static_cast<float>(q) - dm;
          }
        }
        break;
      }
      case kQ6_K: {
        const std::byte* low = in;
        const std::byte* high = in + 128;
        const std::byte* scales = in + 192;
        const float d = half(in + 208);
        for (int h = 0; h < 2; ++h) {
          for (int k = 0; k < 4; ++k) {
            for (int l = 0; l < 32; ++l) {
              const uint8_t lo_byte = byte(low, 64 * h + l + (k % 2) * 32);
              const int lo = k < 2 ? (lo_byte & 0x0F) : (lo_byte >> 4);
              const int hi = (byte(high, 32 * h + l) >> (2 * k)) & 3;
              const auto scale = static_cast<int8_t>(scales[8 * h + l / 16 + 2 * k]);
              out_block[128 * h + 32 * k + l] = d * static_cast<float>(scale) * static_cast<float>((lo | (hi << 4)) - 32);
            }
          }
        }
        break;
      }
      default: break;
    }
  }
  return out;
}

io::LoadReport LoadIntoContext(context::Context ctx, const File& file, const io::LoadOptions& options) {
  return io::LoadTensors(std::move(ctx), {"GGUF file " + file.Path(), file.Names(), [&file](const std::string& name) {
                                            return file.Get(name);
                                          }},
                         options);
}

}  // namespace kiln::io::gguf
