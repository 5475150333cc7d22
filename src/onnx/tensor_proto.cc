// Copyright 2026 The Kiln Authors.
// ONNX TensorProto <-> tensors::Tensor: dtypes, the typed and raw data
// fields, external data files; every size checked before anything is read.
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "kiln/core/float16.h"
#include "kiln/onnx/onnx.h"
#include "src/onnx/converter.h"

namespace kiln::onnx {
namespace internal {
namespace {

using TP = ::onnx::TensorProto;

std::string ReadFileBytes(const std::filesystem::path& path, int64_t offset, int64_t length, int64_t expected,
                          const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Throw(what + ": cannot open external data file " + path.string());
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (offset < 0 || offset > size) {
    Throw(what + ": external data offset " + std::to_string(offset) + " is outside " + path.string() + " (" +
          std::to_string(size) + " bytes)");
  }
  if (length < 0) length = size - offset;
  if (length > size - offset) {
    Throw(what + ": external data [" + std::to_string(offset) + ", +" + std::to_string(length) + ") runs past the end of " +
          path.string() + " (" + std::to_string(size) + " bytes)");
  }
  if (length != expected) {
    Throw(what + ": " + std::to_string(length) + " bytes of external data, the tensor needs " + std::to_string(expected));
  }
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  if (!in) Throw(what + ": cannot read external data file " + path.string());
  return bytes;
}

// The external data of `proto`: location (relative, inside the model's
// folder, as ONNX's checker requires), offset and length.
std::string ExternalBytes(const TP& proto, const std::filesystem::path& dir, int64_t expected, const std::string& what) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : proto.external_data()) {
    auto parse = [&](const std::string& s) {
      try {
        size_t used = 0;
        const long long v = std::stoll(s, &used);
        if (used != s.size() || v < 0) throw std::invalid_argument("");
        return static_cast<int64_t>(v);
      } catch (const std::exception&) {
        Throw(what + ": external data " + kv.key() + " \"" + s + "\" is not a non-negative integer");
      }
    };
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = parse(kv.value());
    else if (kv.key() == "length") length = parse(kv.value());
  }
  if (location.empty()) Throw(what + ": external data without a location");
  if (dir.empty()) Throw(what + ": external data file \"" + location + "\" but no folder to look in (use Model::Import)");
  const std::filesystem::path rel(location);
  if (rel.is_absolute()) Throw(what + ": external data location \"" + location + "\" must be relative to the model");
  for (const auto& part : rel) {
    if (part == "..") Throw(what + ": external data location \"" + location + "\" leaves the model's folder");
  }
  return ReadFileBytes(dir / rel, offset, length, expected, what);
}

// Copies a typed data field (its length already checked against the shape).
template <typename T, typename Field>
void CopyField(const Field& field, int64_t n, void* out, int per_element = 1) {
  T* dst = static_cast<T*>(out);
  for (int64_t i = 0; i < n * per_element; ++i) dst[i] = static_cast<T>(field.Get(static_cast<int>(i)));
}

}  // namespace

dtypes::DType DTypeFromOnnx(int32_t t) {
  switch (t) {
    case TP::FLOAT: return dtypes::Float32;
    case TP::UINT8: return dtypes::Uint8;
    case TP::INT8: return dtypes::Int8;
    case TP::UINT16: return dtypes::Uint16;
    case TP::INT16: return dtypes::Int16;
    case TP::INT32: return dtypes::Int32;
    case TP::INT64: return dtypes::Int64;
    case TP::BOOL: return dtypes::Bool;
    case TP::FLOAT16: return dtypes::Float16;
    case TP::DOUBLE: return dtypes::Float64;
    case TP::UINT32: return dtypes::Uint32;
    case TP::UINT64: return dtypes::Uint64;
    case TP::COMPLEX64: return dtypes::Complex64;
    case TP::COMPLEX128: return dtypes::Complex128;
    case TP::BFLOAT16: return dtypes::BFloat16;
    default: return dtypes::Invalid;
  }
}

std::string OnnxTypeName(int32_t t) {
  switch (t) {
    case TP::FLOAT: return "float";
    case TP::UINT8: return "uint8";
    case TP::INT8: return "int8";
    case TP::UINT16: return "uint16";
    case TP::INT16: return "int16";
    case TP::INT32: return "int32";
    case TP::INT64: return "int64";
    case TP::STRING: return "string";
    case TP::BOOL: return "bool";
    case TP::FLOAT16: return "float16";
    case TP::DOUBLE: return "double";
    case TP::UINT32: return "uint32";
    case TP::UINT64: return "uint64";
    case TP::COMPLEX64: return "complex64";
    case TP::COMPLEX128: return "complex128";
    case TP::BFLOAT16: return "bfloat16";
    default: return "type " + std::to_string(t);
  }
}

std::string TypeText(const ::onnx::TypeProto& type) {
  switch (type.value_case()) {
    case ::onnx::TypeProto::kTensorType: return "tensor(" + OnnxTypeName(type.tensor_type().elem_type()) + ")";
    case ::onnx::TypeProto::kSequenceType: return "seq(" + TypeText(type.sequence_type().elem_type()) + ")";
    case ::onnx::TypeProto::kOptionalType: return "optional(" + TypeText(type.optional_type().elem_type()) + ")";
    case ::onnx::TypeProto::kMapType:
      return "map(" + OnnxTypeName(type.map_type().key_type()) + "," + TypeText(type.map_type().value_type()) + ")";
    case ::onnx::TypeProto::kSparseTensorType:
      return "sparse_tensor(" + OnnxTypeName(type.sparse_tensor_type().elem_type()) + ")";
    default: return "(no type)";
  }
}

tensors::Tensor TensorFromProto(const TP& proto, const std::filesystem::path& dir, const std::string& what_in) {
  const std::string what = proto.name().empty() ? what_in : what_in + " '" + proto.name() + "'";
  const dtypes::DType dtype = DTypeFromOnnx(proto.data_type());
  if (dtype == dtypes::Invalid) Throw(what + ": tensors of " + OnnxTypeName(proto.data_type()) + " are not supported");
  if (proto.has_segment()) Throw(what + ": segmented tensors are not supported");
  std::vector<int64_t> dims;
  int64_t n = 1;
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  for (int64_t d : proto.dims()) {
    if (d < 0) Throw(what + ": negative dimension " + std::to_string(d));
    if (d > kMaxDimension) Throw(what + ": dimension " + std::to_string(d) + " is over 2^40");
    dims.push_back(d);
    if (d != 0 && n > kMaxElements / d) Throw(what + ": too many elements");
    n *= d;
  }
  const size_t elem = dtypes::SizeOf(dtype);
  const bool external = proto.data_location() == TP::EXTERNAL;
  // Every size is checked against the data before the tensor is allocated.
  if (external || proto.has_raw_data()) {
    const std::string ext = external ? ExternalBytes(proto, dir, n * static_cast<int64_t>(elem), what) : std::string();
    const std::string& raw = external ? ext : proto.raw_data();
    if (static_cast<int64_t>(raw.size()) != n * static_cast<int64_t>(elem)) {
      Throw(what + ": " + std::to_string(raw.size()) + " bytes of data, " + shapes::Shape(dtype, dims).ToString() +
            " needs " + std::to_string(n * static_cast<int64_t>(elem)));
    }
    if (dtype == dtypes::Bool) {
      for (int64_t i = 0; i < n; ++i) {
        if (static_cast<uint8_t>(raw[static_cast<size_t>(i)]) > 1) Throw(what + ": a bool byte is neither 0 nor 1");
      }
    }
    tensors::Tensor t(shapes::Shape(dtype, dims));
    if (n > 0) std::memcpy(t.MutableHostData(), raw.data(), raw.size());
    return t;
  }
  const int per = dtypes::IsComplex(dtype) ? 2 : 1;
  int64_t given = 0;
  switch (proto.data_type()) {
    case TP::FLOAT:
    case TP::COMPLEX64: given = proto.float_data_size(); break;
    case TP::DOUBLE:
    case TP::COMPLEX128: given = proto.double_data_size(); break;
    case TP::INT64: given = proto.int64_data_size(); break;
    case TP::UINT32:
    case TP::UINT64: given = proto.uint64_data_size(); break;
    default: given = proto.int32_data_size(); break;
  }
  if (given != n * per) {
    Throw(what + ": " + std::to_string(given) + " values in the typed data field, " +
          shapes::Shape(dtype, dims).ToString() + " needs " + std::to_string(n * per));
  }
  tensors::Tensor t(shapes::Shape(dtype, dims));
  void* out = t.MutableHostData();
  switch (proto.data_type()) {
    case TP::FLOAT: CopyField<float>(proto.float_data(), n, out); break;
    case TP::COMPLEX64: CopyField<float>(proto.float_data(), n, out, 2); break;
    case TP::DOUBLE: CopyField<double>(proto.double_data(), n, out); break;
    case TP::COMPLEX128: CopyField<double>(proto.double_data(), n, out, 2); break;
    case TP::INT64: CopyField<int64_t>(proto.int64_data(), n, out); break;
    case TP::UINT32: CopyField<uint32_t>(proto.uint64_data(), n, out); break;
    case TP::UINT64: CopyField<uint64_t>(proto.uint64_data(), n, out); break;
    case TP::INT32: CopyField<int32_t>(proto.int32_data(), n, out); break;
    case TP::INT16: CopyField<int16_t>(proto.int32_data(), n, out); break;
    case TP::INT8: CopyField<int8_t>(proto.int32_data(), n, out); break;
    case TP::UINT16:
    case TP::FLOAT16:
    case TP::BFLOAT16: CopyField<uint16_t>(proto.int32_data(), n, out); break;
    case TP::UINT8: CopyField<uint8_t>(proto.int32_data(), n, out); break;
    case TP::BOOL: {
      CopyField<uint8_t>(proto.int32_data(), n, out);
      for (int64_t i = 0; i < n; ++i) {
        if (static_cast<uint8_t*>(out)[i] > 1) Throw(what + ": a bool value is neither 0 nor 1");
      }
      break;
    }
    default: Throw(what + ": unsupported data type");
  }
  return t;
}

}  // namespace internal

tensors::Tensor ParseTensor(std::string_view bytes, const std::filesystem::path& external_data_dir) {
  ::onnx::TensorProto proto;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    Throw("onnx::ParseTensor: not a serialized ONNX TensorProto (" + std::to_string(bytes.size()) + " bytes)");
  }
  return internal::TensorFromProto(proto, external_data_dir, "onnx::ParseTensor: tensor");
}

tensors::Tensor ReadTensor(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Throw("onnx::ReadTensor: cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  ::onnx::TensorProto proto;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    Throw("onnx::ReadTensor: " + path.string() + " is not a serialized ONNX TensorProto");
  }
  return internal::TensorFromProto(proto, path.parent_path(), "onnx::ReadTensor: " + path.string());
}

}  // namespace kiln::onnx
