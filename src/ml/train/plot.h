// Copyright 2026 The Kiln Authors.
// Writes the metrics history as one self-contained HTML page of SVG charts.
#pragma once

#include <string>
#include <vector>

#include "kiln/ml/train/loop.h"

namespace kiln::ml::train::internal {

/// The HTML page: one chart per metric, train and eval curves against the
/// global step, with axes, ticks, a legend and the last values.
std::string PlotHtml(const std::vector<HistoryRow>& history, const std::string& title);

}  // namespace kiln::ml::train::internal
