// Copyright 2026 The Kiln Authors.
// Reading and writing the safetensors format, with full validation on read.
#include "src/context/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::context::internal::safetensors {

// Tensor data is stored little-endian; Kiln keeps host data in native order.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host (byte swapping is not implemented)");

namespace {

using dtypes::DType;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";
// Same bound as the reference implementation: a larger header is corrupt, and
// the bound keeps a corrupt length from causing a huge allocation.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

// C64 is safetensors' complex64; C128 is Kiln's own code for Complex128 (the
// format has none), so a checkpoint can hold every Kiln dtype.
constexpr std::array<std::pair<DType, const char*>, 15> kCodes = {{
    {DType::Bool, "BOOL"},    {DType::Uint8, "U8"},     {DType::Int8, "I8"},     {DType::Int16, "I16"},
    {DType::Uint16, "U16"},   {DType::Float16, "F16"},  {DType::BFloat16, "BF16"}, {DType::Int32, "I32"},
    {DType::Uint32, "U32"},   {DType::Float32, "F32"},  {DType::Float64, "F64"},  {DType::Int64, "I64"},
    {DType::Uint64, "U64"},   {DType::Complex64, "C64"}, {DType::Complex128, "C128"},
}};

[[noreturn]] void Fail(const std::string& path, const std::string& message) {
  Throw("safetensors file " + path + ": " + message);
}

std::span<const std::byte> BytesOf(const std::string& s) { return std::as_bytes(std::span<const char>(s)); }

// The JSON header, space-padded to a multiple of 8 bytes.
std::string BuildHeader(const std::string& path, const std::vector<NamedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  OrderedJson header = OrderedJson::object();
  uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty() || t.name == kMetadataKey) Fail(path, "invalid tensor name \"" + t.name + "\"");
    if (header.contains(t.name)) Fail(path, "duplicate tensor name \"" + t.name + "\"");
    if (!t.value.Ok()) Fail(path, "tensor \"" + t.name + "\" is empty (no value)");
    const uint64_t bytes = static_cast<uint64_t>(t.value.Shape().ByteSize());
    header[t.name] = {{"dtype", DTypeCode(t.value.DType())},
                      {"shape", t.value.Shape().Dims()},
                      {"data_offsets", OrderedJson::array({offset, offset + bytes})}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {  // e.g. a name that is not valid UTF-8
    Fail(path, std::string("cannot encode the header: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

uint64_t UnsignedField(const std::string& path, const std::string& name, const Json& v, const char* what) {
  if (!v.is_number_unsigned()) Fail(path, "tensor \"" + name + "\": " + what + " " + v.dump() + " is not a non-negative integer");
  return v.get<uint64_t>();
}

Entry ParseEntry(const std::string& path, const std::string& name, const Json& info) {
  if (!info.is_object() || info.size() != 3 || !info.contains("dtype") || !info.contains("shape") ||
      !info.contains("data_offsets")) {
    Fail(path, "tensor \"" + name + "\": expected {\"dtype\", \"shape\", \"data_offsets\"}, got " + info.dump());
  }
  const Json& code = info["dtype"];
  const DType dtype = code.is_string() ? DTypeFromCode(code.get<std::string>()) : DType::Invalid;
  if (dtype == DType::Invalid) Fail(path, "tensor \"" + name + "\": unknown dtype " + code.dump());
  const Json& dims_json = info["shape"];
  if (!dims_json.is_array()) Fail(path, "tensor \"" + name + "\": shape " + dims_json.dump() + " is not an array");
  std::vector<int64_t> dims;
  uint64_t bytes = dtypes::SizeOf(dtype);
  bool overflow = false;
  for (const Json& d : dims_json) {
    const uint64_t dim = UnsignedField(path, name, d, "dimension");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) Fail(path, "tensor \"" + name + "\": dimension too large");
    overflow |= __builtin_mul_overflow(bytes, dim, &bytes);
    dims.push_back(static_cast<int64_t>(dim));
  }
  const Json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    Fail(path, "tensor \"" + name + "\": data_offsets " + offsets.dump() + " is not [begin, end]");
  }
  // A shape of more than 2^63 - 1 bytes cannot be a Shape; an empty one may
  // have such dimensions (its byte count is then 0, not an overflow).
  const bool empty = std::find(dims.begin(), dims.end(), 0) != dims.end();
  if (empty) bytes = 0;
  if (!empty && (overflow || bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    Fail(path, "tensor \"" + name + "\": data_offsets " + offsets.dump() + " do not match shape " + dims_json.dump() +
                   " of " + dtypes::Name(dtype) + " (overflowing bytes)");
  }
  Entry e{name, shapes::Shape(dtype, std::move(dims)), UnsignedField(path, name, offsets[0], "offset"),
          UnsignedField(path, name, offsets[1], "offset")};
  if (e.end < e.begin || e.end - e.begin != bytes) {
    Fail(path, "tensor \"" + name + "\": data_offsets " + offsets.dump() + " do not match " + e.shape.ToString() + " (" +
                   std::to_string(bytes) + " bytes)");
  }
  return e;
}

std::map<std::string, std::string> ParseMetadata(const std::string& path, const Json& metadata) {
  if (!metadata.is_object()) Fail(path, "__metadata__ is not an object");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string()) Fail(path, "__metadata__ value of \"" + key + "\" is not a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

}  // namespace

std::vector<Entry> ParseHeader(const std::string& path, const std::string& text, uint64_t data_size,
                               std::map<std::string, std::string>& metadata) {
  Json header;
  try {
    header = Json::parse(text);
  } catch (const Json::exception& e) {
    Fail(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) Fail(path, "the header is not a JSON object");
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) metadata = ParseMetadata(path, info);
    else entries.push_back(ParseEntry(path, name, info));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    if (e.begin != expected) {
      Fail(path, "tensor \"" + e.name + "\" starts at data offset " + std::to_string(e.begin) + ", expected " +
                     std::to_string(expected) + " (data must be contiguous, without holes or overlaps)");
    }
    expected = e.end;
  }
  if (expected != data_size) {
    Fail(path, "the tensors cover " + std::to_string(expected) + " bytes of data but the file has " +
                   std::to_string(data_size) + " (truncated or corrupt)");
  }
  return entries;
}

void CheckBoolBytes(const std::string& path, const Entry& e, const std::byte* data) {
  // Any other byte would be an invalid C++ bool.
  const std::byte* end = data + (e.end - e.begin);
  if (std::find_if(data, end, [](std::byte b) { return static_cast<uint8_t>(b) > 1; }) != end) {
    Fail(path, "tensor \"" + e.name + "\" (BOOL) holds bytes other than 0 and 1");
  }
}

uint64_t HeaderLength(const std::string& path, std::span<const std::byte, 8> prefix, uint64_t file_size) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(prefix[static_cast<size_t>(i)]);
  if (n > file_size - 8 || n > kMaxHeaderSize) {
    Fail(path, "header length " + std::to_string(n) + " exceeds the file size " + std::to_string(file_size) +
                   " (truncated or corrupt)");
  }
  return n;
}

namespace {

// Reads one tensor's bytes (the reader is positioned at its data).
tensors::Tensor ReadTensor(FileReader& reader, const Entry& e) {
  tensors::Tensor t(e.shape);
  const size_t bytes = e.end - e.begin;
  if (bytes == 0) return t;
  auto* data = static_cast<std::byte*>(t.MutableHostData());
  reader.Read(std::span<std::byte>(data, bytes));
  if (e.shape.DType() == DType::Bool) CheckBoolBytes(reader.Path(), e, data);
  return t;
}

}  // namespace

const char* DTypeCode(DType dtype) {
  for (const auto& [d, code] : kCodes) {
    if (d == dtype) return code;
  }
  Throw(std::string("safetensors: no code for dtype ") + dtypes::Name(dtype));
}

DType DTypeFromCode(const std::string& code) {
  for (const auto& [d, c] : kCodes) {
    if (code == c) return d;
  }
  return DType::Invalid;
}

FileDigest Write(const std::string& path, const std::vector<NamedTensor>& tensors,
                 const std::map<std::string, std::string>& metadata) {
  const std::string header = BuildHeader(path, tensors, metadata);
  std::array<std::byte, 8> length;
  uint64_t n = header.size();
  for (auto& b : length) {
    b = static_cast<std::byte>(n & 0xff);
    n >>= 8;
  }
  std::vector<std::span<const std::byte>> pieces = {length, BytesOf(header)};
  for (const NamedTensor& t : tensors) {
    const auto bytes = static_cast<size_t>(t.value.Shape().ByteSize());
    if (bytes > 0) pieces.emplace_back(static_cast<const std::byte*>(t.value.HostData()), bytes);
  }
  return WriteFileAtomically(path, pieces);
}

Contents Read(const std::string& path) {
  FileReader reader(path);
  if (reader.Size() < 8) Fail(path, "the file has " + std::to_string(reader.Size()) + " bytes, too short for a header");
  std::array<std::byte, 8> length;
  reader.Read(length);
  const uint64_t n = HeaderLength(path, length, reader.Size());
  std::string text(n, '\0');
  reader.Read(std::as_writable_bytes(std::span<char>(text)));
  Contents contents;
  const std::vector<Entry> entries = ParseHeader(path, text, reader.Size() - 8 - n, contents.metadata);
  for (const Entry& e : entries) contents.tensors.push_back({e.name, ReadTensor(reader, e)});
  contents.digest = reader.Digest();
  return contents;
}

}  // namespace kiln::context::internal::safetensors
