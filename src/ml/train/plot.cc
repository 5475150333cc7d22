// Copyright 2026 The Kiln Authors.
#include "src/ml/train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

namespace kiln::ml::train::internal {

namespace {

constexpr double kWidth = 560, kHeight = 300, kLeft = 64, kRight = 16, kTop = 28, kBottom = 40;

struct Series {
  std::vector<std::pair<double, double>> points;  // (step, value)
};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// About five round tick values covering [lo, hi].
std::vector<double> Ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

std::string Chart(const std::string& metric, const std::map<std::string, Series>& by_split) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& [split, series] : by_split) {
    for (auto [x, y] : series.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  if (x0 > x1) return "";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + std::max(1e-9, std::abs(y0) * 0.1), y0 -= std::max(1e-9, std::abs(y0) * 0.1);
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto sx = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * (kWidth - kLeft - kRight); };
  auto sy = [&](double y) { return kHeight - kBottom - (y - y0) / (y1 - y0) * (kHeight - kTop - kBottom); };
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << kWidth << "' height='" << kHeight
      << "' viewBox='0 0 " << kWidth << " " << kHeight << "' role='img' aria-label='" << Escape(metric) << "'>\n";
  svg << "<text x='" << kLeft << "' y='18' class='title'>" << Escape(metric) << "</text>\n";
  for (double t : Ticks(y0, y1)) {
    svg << "<line x1='" << kLeft << "' x2='" << kWidth - kRight << "' y1='" << sy(t) << "' y2='" << sy(t)
        << "' class='grid'/><text x='" << kLeft - 6 << "' y='" << sy(t) + 4 << "' class='ylabel'>" << Format(t)
        << "</text>\n";
  }
  for (double t : Ticks(x0, x1)) {
    svg << "<text x='" << sx(t) << "' y='" << kHeight - kBottom + 16 << "' class='xlabel'>" << Format(t)
        << "</text>\n";
  }
  svg << "<text x='" << (kWidth + kLeft) / 2 << "' y='" << kHeight - 6 << "' class='xlabel'>step</text>\n";
  svg << "<rect x='" << kLeft << "' y='" << kTop << "' width='" << kWidth - kLeft - kRight << "' height='"
      << kHeight - kTop - kBottom << "' class='frame'/>\n";
  size_t legend = 0;
  for (const auto& [split, series] : by_split) {
    std::ostringstream path;
    for (auto [x, y] : series.points) {
      if (std::isfinite(y)) path << (path.tellp() == 0 ? "" : " ") << sx(x) << "," << sy(y);
    }
    svg << "<polyline points='" << path.str() << "' class='line " << split << "'/>\n";
    if (series.points.size() <= 40) {  // few points (eval): mark each
      for (auto [x, y] : series.points) {
        if (std::isfinite(y)) svg << "<circle cx='" << sx(x) << "' cy='" << sy(y) << "' r='3' class='dot " << split << "'/>\n";
      }
    }
    const double last = series.points.empty() ? NAN : series.points.back().second;
    // The legend sits in the title row, above the frame, so it can never
    // cover a curve: one 130-pixel slot per split, right-aligned.
    const double slot_x = kWidth - kRight - 130.0 * static_cast<double>(by_split.size() - legend++);
    svg << "<text x='" << slot_x << "' y='18' class='legend " << split << "'>" << split << ": " << Format(last)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace

std::string PlotHtml(const std::vector<HistoryRow>& history, const std::string& title) {
  // metric -> split -> series, in the order metrics first appear.
  std::vector<std::string> order;
  std::map<std::string, std::map<std::string, Series>> data;
  for (const HistoryRow& row : history) {
    for (const auto& [name, value] : row.metrics) {
      if (!data.contains(name)) order.push_back(name);
      data[name][row.split].points.emplace_back(static_cast<double>(row.step), value);
    }
  }
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>" << Escape(title) << "</title>\n"
       << "<style>body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}"
          ".charts{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fff;border:1px solid #ddd}"
          ".title{font-size:14px;font-weight:bold}.grid{stroke:#eee}.frame{fill:none;stroke:#999}"
          ".ylabel{font-size:11px;text-anchor:end;fill:#555}.xlabel{font-size:11px;text-anchor:middle;fill:#555}"
          ".line{fill:none;stroke-width:2}.line.train{stroke:#1f77b4}.line.eval{stroke:#ff7f0e}"
          ".dot.train{fill:#1f77b4}.dot.eval{fill:#ff7f0e}.legend{font-size:12px}.legend.train{fill:#1f77b4}"
          ".legend.eval{fill:#ff7f0e}</style></head><body>\n"
       << "<h1>" << Escape(title) << "</h1>\n";
  if (history.empty()) html << "<p>No metrics were recorded.</p>\n";
  html << "<div class='charts'>\n";
  for (const std::string& name : order) html << Chart(name, data[name]);
  html << "</div>\n</body></html>\n";
  return html.str();
}

}  // namespace kiln::ml::train::internal
