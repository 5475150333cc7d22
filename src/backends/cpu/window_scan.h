// Copyright 2026 The Kiln Authors.
// Scan kernels of cumulative windows (ir::AsCumulativeWindow: CumSum,
// CumProd, CumMax, CumMin and their gradients): one pass along the axis with
// a running accumulator, O(n) where the window kernels take O(n^2).
#pragma once

#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

/// The scan kernel of a cumulative ReduceWindow, or an empty Kernel when the
/// window is not cumulative. Forward windows combine in the generic kernel's
/// order, so their results are identical to it; reverse windows accumulate
/// from the end: the same values up to rounding for sums and products, and
/// max/min may pick the other of two equal values (+0 for -0).
Kernel MakeScanReduceWindow(const ir::Function& fn, const ir::Instruction& instr);

/// The scan kernel of a cumulative SelectAndScatter, or an empty Kernel:
/// each window selects the first best element in index order (the first
/// NaN if any), as the generic kernel does, and the source values are added
/// at the selections (for reverse windows in the opposite order, so sums
/// may round differently).
Kernel MakeScanSelectAndScatter(const ir::Function& fn, const ir::Instruction& instr);

}  // namespace kiln::backends::cpu
