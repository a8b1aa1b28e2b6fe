// SPDX-License-Identifier: MIT
// The example's pictures as SVG (plain text, opens in any browser): line charts, the sample
// digits with their predictions, and the confusion matrix.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace mnist {

struct Series {
  std::string name, color;
  std::vector<double> x, y;
};

namespace svg {

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

inline std::string text(double x, double y, const std::string& s, int size = 12,
                        const char* anchor = "middle", const char* extra = "") {
  std::ostringstream o;
  o << "<text x=\"" << x << "\" y=\"" << y << "\" font-size=\"" << size << "\" text-anchor=\""
    << anchor << "\" font-family=\"sans-serif\" " << extra << ">" << escape(s) << "</text>\n";
  return o.str();
}

// About five round tick values covering [lo, hi] (finite, lo < hi). Any magnitude works:
// the ticks are counted first, then computed, so a step below the values' resolution (1e30
// plus 0.2 is 1e30) cannot stall the loop.
inline std::vector<double> ticks(double lo, double hi) {
  if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi)) return {};
  const double raw = (hi / 2 - lo / 2) / 2.5;  // span / 5, without overflowing hi - lo
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5   ? mag
                      : raw / mag < 3.5 ? 2 * mag
                      : raw / mag < 7.5 ? 5 * mag
                                        : 10 * mag;
  const double first = std::ceil(lo / step), last = std::floor(hi / step);
  if (!(std::isfinite(first) && std::isfinite(last) && step > 0) || last - first > 20)
    return {lo, hi};
  std::vector<double> out;
  for (int i = 0; i <= static_cast<int>(last - first); ++i) out.push_back((first + i) * step);
  return out;
}

inline std::string format(double v) {
  std::ostringstream o;
  o.precision(4);
  o << (std::abs(v) < 1e-12 ? 0.0 : v);
  return o.str();
}

}  // namespace svg

/// One panel of a line chart at (left, top) of the given size, as an SVG fragment. Any values
/// draw: a single point (a marker), equal values (a band around them), huge ones (the scale
/// is computed on halves, so hi - lo cannot overflow); non-finite ones are left out and
/// counted in a note. Points get markers when there are few enough to tell apart.
inline std::string line_panel(double left, double top, double width, double height,
                              const std::string& title, const std::string& xlabel,
                              const std::vector<Series>& series, bool integer_x = false) {
  double x0 = HUGE_VAL, x1 = -HUGE_VAL, y0 = HUGE_VAL, y1 = -HUGE_VAL;
  std::size_t not_finite = 0;
  const auto finite = [](const Series& s, std::size_t i) {
    return std::isfinite(s.x[i]) && std::isfinite(s.y[i]);
  };
  for (const Series& s : series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!finite(s, i)) {
        ++not_finite;
        continue;
      }
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw
  // Widen a zero-width range around its value, else pad 5% (on halves: no overflow).
  const auto widen = [](double& lo, double& hi, double pad_fraction) {
    const double half_span = hi / 2 - lo / 2;
    const double pad =
        half_span > 0 ? 2 * half_span * pad_fraction : std::max(std::abs(lo) * 0.1, 1.0);
    lo = std::max(lo - pad, -DBL_MAX), hi = std::min(hi + pad, DBL_MAX);
    if (!(hi > lo)) lo = std::nextafter(lo, -HUGE_VAL), hi = std::nextafter(hi, HUGE_VAL);
  };
  if (x1 == x0) widen(x0, x1, 0);
  widen(y0, y1, 0.05);
  const double pl = left + 55, pt = top + 45, pw = width - 75, ph = height - 90;
  const auto px = [&](double x) { return pl + (x / 2 - x0 / 2) / (x1 / 2 - x0 / 2) * pw; };
  const auto py = [&](double y) { return pt + ph - (y / 2 - y0 / 2) / (y1 / 2 - y0 / 2) * ph; };

  std::ostringstream o;
  o << svg::text(left + width / 2, top + 18, title, 14, "middle", "font-weight=\"bold\"");
  o << "<rect x=\"" << pl << "\" y=\"" << pt << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"white\" stroke=\"#888\"/>\n";
  for (double t : svg::ticks(y0, y1)) {
    o << "<line x1=\"" << pl << "\" x2=\"" << pl + pw << "\" y1=\"" << py(t) << "\" y2=\"" << py(t)
      << "\" stroke=\"#eee\"/>\n";
    o << svg::text(pl - 6, py(t) + 4, svg::format(t), 11, "end");
  }
  for (double t : svg::ticks(x0, x1))
    if (!integer_x || t == std::floor(t)) o << svg::text(px(t), pt + ph + 16, svg::format(t), 11);
  o << svg::text(pl + pw / 2, pt + ph + 34, xlabel, 12);
  if (not_finite > 0)
    o << svg::text(pl + 6, pt + ph - 8,
                   std::to_string(not_finite) + " non-finite value(s) not drawn", 11, "start",
                   "fill=\"#cf222e\"");
  double legend_x = pl + pw - 110.0 * static_cast<double>(series.size());
  for (const Series& s : series) {
    std::size_t points = 0;
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\" points=\"";
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (finite(s, i)) o << px(s.x[i]) << ',' << py(s.y[i]) << ' ', ++points;
    o << "\"/>\n";
    if (points <= 60)  // markers: a single point shows, and the epochs can be counted
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (finite(s, i))
          o << "<circle cx=\"" << px(s.x[i]) << "\" cy=\"" << py(s.y[i]) << "\" r=\"3\" fill=\""
            << s.color << "\"/>\n";
    o << "<line x1=\"" << legend_x << "\" x2=\"" << legend_x + 20 << "\" y1=\"" << pt - 6
      << "\" y2=\"" << pt - 6 << "\" stroke=\"" << s.color << "\" stroke-width=\"2\"/>\n";
    o << svg::text(legend_x + 25, pt - 2, s.name, 11, "start");
    legend_x += 110;
  }
  return o.str();
}

inline std::string svg_document(double width, double height, const std::string& body) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << ' ' << height << "\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << body << "</svg>\n";
  return o.str();
}

/// Digits (each rows x cols raw bytes) drawn with matplotlib's gray colormap (0 = black), as
/// reference 1 shows them, in a grid, each titled with its label and the model's prediction.
inline std::string digits_svg(const std::vector<std::vector<std::uint8_t>>& images, int rows,
                              int cols, const std::vector<int>& labels,
                              const std::vector<int>& predictions) {
  const int per_row = 3, scale = 5, cell_w = cols * scale + 30, cell_h = rows * scale + 50;
  const int n = static_cast<int>(images.size());
  const int grid_rows = (n + per_row - 1) / per_row;
  std::ostringstream o;
  for (int k = 0; k < n; ++k) {
    const int gx = (k % per_row) * cell_w + 15, gy = (k / per_row) * cell_h + 35;
    const bool right =
        predictions[static_cast<std::size_t>(k)] == labels[static_cast<std::size_t>(k)];
    o << svg::text(gx + cols * scale / 2.0, gy - 20,
                   "Ground Truth: " + std::to_string(labels[static_cast<std::size_t>(k)]), 13);
    o << svg::text(gx + cols * scale / 2.0, gy - 5,
                   "Predicted: " + std::to_string(predictions[static_cast<std::size_t>(k)]), 13,
                   "middle", right ? "fill=\"#1a7f37\"" : "fill=\"#cf222e\"");
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        const int v = images[static_cast<std::size_t>(k)][static_cast<std::size_t>(r * cols + c)];
        o << "<rect x=\"" << gx + c * scale << "\" y=\"" << gy + r * scale << "\" width=\"" << scale
          << "\" height=\"" << scale << "\" fill=\"rgb(" << v << ',' << v << ',' << v << ")\"/>";
      }
    o << '\n';
  }
  return svg_document(per_row * cell_w + 15, grid_rows * cell_h + 20, o.str());
}

/// A num_classes x num_classes heat map: row = true label, column = prediction.
inline std::string confusion_svg(const std::vector<std::vector<std::int64_t>>& counts,
                                 const std::string& title) {
  const int n = static_cast<int>(counts.size()), cell = 40, left = 70, top = 60;
  std::int64_t max_count = 1;
  for (const auto& row : counts)
    for (std::int64_t c : row) max_count = std::max(max_count, c);
  std::ostringstream o;
  o << svg::text(left + n * cell / 2.0, 22, title, 14, "middle", "font-weight=\"bold\"");
  o << svg::text(left + n * cell / 2.0, top - 12, "predicted", 12);
  o << svg::text(
      18, top + n * cell / 2.0, "true label", 12, "middle",
      ("transform=\"rotate(-90 18 " + std::to_string(top + n * cell / 2) + ")\"").c_str());
  for (int i = 0; i < n; ++i) {
    o << svg::text(left + i * cell + cell / 2.0, top + n * cell + 16, std::to_string(i), 12);
    o << svg::text(left - 8, top + i * cell + cell / 2.0 + 4, std::to_string(i), 12, "end");
    for (int j = 0; j < n; ++j) {
      const std::int64_t c = counts[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
      // sqrt keeps the few errors visible beside the large diagonal
      const double t = std::sqrt(static_cast<double>(c) / static_cast<double>(max_count));
      const int shade = static_cast<int>(255 - 200 * t);
      o << "<rect x=\"" << left + j * cell << "\" y=\"" << top + i * cell << "\" width=\"" << cell
        << "\" height=\"" << cell << "\" fill=\"rgb(" << shade << ',' << shade << ",255)\" "
        << "stroke=\"white\"/>";
      if (c)
        o << svg::text(left + j * cell + cell / 2.0, top + i * cell + cell / 2.0 + 4,
                       std::to_string(c), 10, "middle", t > 0.6 ? "fill=\"white\"" : "");
    }
  }
  return svg_document(left + n * cell + 20, top + n * cell + 30, o.str());
}

}  // namespace mnist
