// Copyright 2026 The Kiln Authors.
// IDX files (the MNIST format) and MNIST-like image datasets.
//
// Layout: magic (two zero bytes, a type code, the number of dimensions),
// each dimension as a big-endian int32, then the data in row-major order,
// each element big-endian. zlib's gzread reads gzip-compressed and plain
// files alike, so both work whatever the file name.
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>

#include "kiln/ml/datasets/datasets.h"

namespace kiln::ml::datasets {

namespace {

using tensors::Tensor;

// zlib's read buffer: its default 8 KiB makes many small reads of a dataset
// of tens of megabytes.
constexpr unsigned kBufferBytes = 1u << 20;

[[noreturn]] void IdxError(const std::string& path, const std::string& message) {
  Throw("ReadIdx(\"" + path + "\"): " + message);
}

// Closes the gzFile when the reader goes out of scope (errors included).
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads from a (possibly compressed) file, turning zlib failures into
// errors that name the file.
class IdxReader {
 public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {
    errno = 0;
    file_.reset(gzopen(path_.c_str(), "rb"));
    if (file_ == nullptr) {
      IdxError(path_, std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "out of memory"));
    }
    gzbuffer(file_.get(), kBufferBytes);
  }

  // Reads up to `n` bytes into `dst`; returns how many were read (fewer only
  // at the end of the data).
  size_t Read(void* dst, size_t n) {
    constexpr size_t kChunk = size_t{1} << 30;  // gzread takes an unsigned count.
    size_t done = 0;
    while (done < n) {
      const auto want = static_cast<unsigned>(std::min(n - done, kChunk));
      const int got = gzread(file_.get(), static_cast<char*>(dst) + done, want);
      if (got < 0) IdxError(path_, "read error: " + ZlibMessage());
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  // Reads exactly `n` bytes or fails, naming what was being read.
  void ReadExactly(void* dst, size_t n, const char* what) {
    const size_t got = Read(dst, n);
    if (got < n) Truncated(what, n, got);
  }

  // Fails for data that ends after `got` of the `want` bytes of `what`.
  [[noreturn]] void Truncated(const char* what, size_t want, size_t got) const {
    std::string message =
        "truncated " + std::string(what) + ": expected " + std::to_string(want) + " bytes, got " + std::to_string(got);
    // zlib treats a gzip stream cut short as a short read, not a read error;
    // its note tells a damaged .gz from an IDX file that is too short.
    int code = Z_OK;
    gzerror(file_.get(), &code);
    if (code == Z_BUF_ERROR) message += " (gzip: " + ZlibMessage() + ")";
    IdxError(path_, message);
  }

  const std::string& path() const { return path_; }

 private:
  // zlib's description of the last error, without the "path: " it prepends
  // (IdxError names the file already).
  std::string ZlibMessage() const {
    int code = 0;
    std::string message = gzerror(file_.get(), &code);
    const std::string prefix = path_ + ": ";
    if (message.starts_with(prefix)) message.erase(0, prefix.size());
    return message;
  }

  std::string path_;
  GzFile file_;
};

// The dtype of an IDX type code.
dtypes::DType IdxDType(const std::string& path, uint8_t code) {
  switch (code) {
    case 0x08:
      return dtypes::Uint8;
    case 0x09:
      return dtypes::Int8;
    case 0x0B:
      return dtypes::Int16;
    case 0x0C:
      return dtypes::Int32;
    case 0x0D:
      return dtypes::Float32;
    case 0x0E:
      return dtypes::Float64;
    default:
      break;
  }
  std::ostringstream msg;
  msg << "unknown data type code 0x" << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(code)
      << " (want 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)";
  IdxError(path, msg.str());
}

// Reads the magic number and dimensions; returns the shape of the data.
shapes::Shape ReadHeader(IdxReader& in) {
  uint8_t magic[4];
  in.ReadExactly(magic, 4, "header");
  if (magic[0] != 0 || magic[1] != 0) {
    std::ostringstream msg;
    msg << "bad magic number 0x" << std::hex;
    for (uint8_t b : magic) msg << (b < 16 ? "0" : "") << static_cast<int>(b);
    msg << " (an IDX file starts with two zero bytes)";
    IdxError(in.path(), msg.str());
  }
  const dtypes::DType dtype = IdxDType(in.path(), magic[2]);
  std::vector<int64_t> dims(magic[3]);
  for (int64_t& d : dims) {
    uint8_t be[4];
    in.ReadExactly(be, 4, "dimensions");
    d = static_cast<int32_t>(uint32_t{be[0]} << 24 | uint32_t{be[1]} << 16 | uint32_t{be[2]} << 8 | be[3]);
    if (d < 0) IdxError(in.path(), "negative dimension " + std::to_string(d));
  }
  // Dimensions are below 2^31 each, but their product can overflow.
  int64_t bytes = static_cast<int64_t>(dtypes::SizeOf(dtype));
  for (int64_t d : dims) {
    if (d != 0 && bytes > std::numeric_limits<int64_t>::max() / d) IdxError(in.path(), "data size overflows");
    bytes *= d;
  }
  return shapes::Shape(dtype, std::move(dims));
}

// Reads `bytes` bytes of data. The buffer grows chunk by chunk, so a header
// that claims far more data than the file holds fails as "truncated" instead
// of allocating the claimed size up front.
std::vector<std::byte> ReadData(IdxReader& in, size_t bytes) {
  constexpr size_t kChunk = size_t{64} << 20;
  std::vector<std::byte> data;
  while (data.size() < bytes) {
    const size_t old = data.size();
    const size_t want = std::min(bytes - old, kChunk);
    data.resize(old + want);
    const size_t got = in.Read(data.data() + old, want);
    if (got < want) in.Truncated("data", bytes, old + got);
  }
  std::byte extra;
  if (in.Read(&extra, 1) != 0) IdxError(in.path(), "trailing data after the " + std::to_string(bytes) + " data bytes");
  return data;
}

// Copies big-endian elements of `element_size` bytes into host order.
void CopyFromBigEndian(const std::byte* src, std::byte* dst, size_t bytes, size_t element_size) {
  if constexpr (std::endian::native == std::endian::big) {
    std::memcpy(dst, src, bytes);
  } else {
    for (size_t i = 0; i < bytes; i += element_size) std::reverse_copy(src + i, src + i + element_size, dst + i);
  }
}

}  // namespace

Tensor ReadIdx(const std::string& path) {
  IdxReader in(path);
  const shapes::Shape shape = ReadHeader(in);
  const auto bytes = static_cast<size_t>(shape.ByteSize());
  const std::vector<std::byte> data = ReadData(in, bytes);
  Tensor result(shape);
  if (bytes > 0) {
    CopyFromBigEndian(data.data(), static_cast<std::byte*>(result.MutableHostData()), bytes,
                      dtypes::SizeOf(shape.DType()));
  }
  return result;
}

namespace {

// Checks that `t` read from `path` is Uint8 of rank `rank`.
void CheckUint8(const Tensor& t, const std::string& path, int rank, const char* what) {
  if (t.DType() == dtypes::Uint8 && t.Rank() == rank) return;
  Throw("LoadMnistLike: \"" + path + "\" holds " + t.Shape().ToString() + ", want Uint8 " + what);
}

}  // namespace

ImageData LoadMnistLike(const std::string& dir, const std::string& prefix) {
  const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  const Tensor raw_images = ReadIdx(images_path);
  const Tensor raw_labels = ReadIdx(labels_path);
  CheckUint8(raw_images, images_path, 3, "[n, height, width]");
  CheckUint8(raw_labels, labels_path, 1, "[n]");
  const int64_t n = raw_images.Shape().Dim(0);
  if (raw_labels.Shape().Dim(0) != n) {
    Throw("LoadMnistLike: " + std::to_string(n) + " images in \"" + images_path + "\" but " +
          std::to_string(raw_labels.Shape().Dim(0)) + " labels in \"" + labels_path + "\"");
  }
  const auto& d = raw_images.Shape().Dims();
  ImageData out{Tensor(shapes::Make(dtypes::Float32, {n, d[1], d[2], 1})), Tensor(shapes::Make(dtypes::Int32, {n}))};
  std::span<const uint8_t> pixels = raw_images.Flat<uint8_t>();
  std::span<float> images = out.images.MutableFlat<float>();
  for (size_t i = 0; i < pixels.size(); ++i) images[i] = static_cast<float>(pixels[i]) / 255.0f;
  std::ranges::copy(raw_labels.Flat<uint8_t>(), out.labels.MutableFlat<int32_t>().begin());
  return out;
}

}  // namespace kiln::ml::datasets
