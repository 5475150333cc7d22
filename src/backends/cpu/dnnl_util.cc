// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/dnnl_util.h"

namespace kiln::backends::cpu::dnnl_util {

const dnnl::engine& Engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::primitive_attr UserScratchpadAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

bool IsReferenceImpl(std::string_view impl_info) { return impl_info.starts_with("ref"); }

bool IsOptimizedImpl(std::string_view impl_info) {
  return impl_info.starts_with("jit") || impl_info.starts_with("brg");
}

dnnl::memory Wrap(const dnnl::memory::desc& desc, const void* data) {
  return dnnl::memory(desc, Engine(), const_cast<void*>(data));  // NOLINT: read-only use by oneDNN
}

void Execute(const dnnl::primitive& primitive, std::unordered_map<int, dnnl::memory> args,
             const dnnl::memory::desc& scratchpad) {
  if (scratchpad.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad, Engine()));
  dnnl::stream stream(Engine());
  primitive.execute(stream, args);
  stream.wait();
}

}  // namespace kiln::backends::cpu::dnnl_util
