// Copyright 2026 The Kiln Authors.
#include "kiln/ir/ops.h"

#include <array>
#include <ostream>

namespace kiln::ir {

namespace {
struct OpInfo {
  std::string_view name;
  OpCategory category;
};
constexpr std::array<OpInfo, kNumOpTypes> kOpInfo = {{
#define KILN_X(name, category) {#name, OpCategory::category},
    KILN_IR_OPS(KILN_X)
#undef KILN_X
}};
}  // namespace

std::string_view OpName(OpType op) {
  auto i = static_cast<size_t>(op);
  return i < kOpInfo.size() ? kOpInfo[i].name : std::string_view("InvalidOp");
}

OpCategory CategoryOf(OpType op) { return kOpInfo.at(static_cast<size_t>(op)).category; }

std::ostream& operator<<(std::ostream& os, OpType op) { return os << OpName(op); }

}  // namespace kiln::ir
