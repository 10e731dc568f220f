// The HTML report: one file, inline CSS and SVG, no script and no network, so it opens the
// same from a mail attachment as from a web server.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "lab/report.hpp"

namespace crew::lab {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string px(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

const char* const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// Maps values onto [0, 1] linearly or logarithmically.
struct scale {
  double lo, hi;
  bool log;
  double operator()(double v) const {
    if (log) {
      v = std::max(v, lo);
      return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    }
    return (v - lo) / (hi - lo);
  }
};

scale make_scale(double lo, double hi, bool log, bool from_zero) {
  if (log) {
    if (lo <= 0) lo = hi > 0 ? hi / 1000 : 1e-9;
    if (hi <= lo) hi = lo * 10;
    return {std::pow(10, std::floor(std::log10(lo))), std::pow(10, std::ceil(std::log10(hi))),
            true};
  }
  if (from_zero) lo = std::min(0.0, lo);
  if (hi <= lo) hi = lo + 1;
  return {lo, hi * 1.05, false};
}

std::vector<double> ticks(const scale& s) {
  std::vector<double> t;
  if (s.log) {
    for (double v = s.lo; v <= s.hi * 1.0001; v *= 10) t.push_back(v);
  } else {
    for (int i = 0; i <= 4; ++i) t.push_back(s.lo + (s.hi - s.lo) * i / 4);
  }
  return t;
}

// A width in px that a label of the chart's 12px sans-serif font does not exceed: code points
// × 7.2 px (the widest common glyphs average below that; capitals and 'm' are ~9 px, most
// lowercase ~6). Used to size label columns and legends so that no name is cut off; a chart
// wider than the page is scaled down whole by its viewBox rather than clipped.
double label_width(const std::string& text) {
  std::size_t code_points = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++code_points;
  return 7.2 * static_cast<double>(code_points);
}

std::string unit_of(const result& r) {
  for (const auto& s : r.data)
    if (s.has_data()) return s.unit;
  return "";
}

std::string bar_chart(const result& r) {
  double longest = 0;
  for (const auto& s : r.data) longest = std::max(longest, label_width(s.name));
  // Labels right-aligned against the plot; the value after the longest bar needs ~70 px.
  const double label_w = std::max(160.0, longest + 16), plot_w = 400, value_w = 76;
  const double W = label_w + plot_w + value_w, row_h = 24, top = 10, axis_h = 44;
  const double H = top + row_h * static_cast<double>(r.data.size()) + axis_h;
  double lo = INFINITY, hi = 0;
  for (const auto& s : r.data)
    if (s.has_data()) {
      const auto st = s.stats();
      lo = std::min(lo, st.p10);
      hi = std::max(hi, st.p90);
    }
  const std::string unit = unit_of(r);
  const scale sc = make_scale(std::isfinite(lo) ? lo : 0, hi, r.chart.log_y, true);
  std::ostringstream o;
  int points = 0;
  std::ostringstream body;
  for (std::size_t i = 0; i < r.data.size(); ++i) {
    const auto& s = r.data[i];
    const double y = top + row_h * static_cast<double>(i);
    body << "<text x=\"" << px(label_w - 8) << "\" y=\"" << px(y + 16)
         << "\" text-anchor=\"end\" class=\"lbl\">" << esc(s.name) << "</text>";
    if (!s.has_data()) {
      body << "<text x=\"" << px(label_w + 6) << "\" y=\"" << px(y + 16) << "\" class=\"absent\">"
           << esc(to_string(s.state)) << "</text>";
      continue;
    }
    const auto st = s.stats();
    const double x0 = label_w + plot_w * std::clamp(sc(sc.log ? sc.lo : 0), 0.0, 1.0);
    const double xm = label_w + plot_w * std::clamp(sc(st.median), 0.0, 1.0);
    const double a = label_w + plot_w * std::clamp(sc(st.p10), 0.0, 1.0);
    const double b = label_w + plot_w * std::clamp(sc(st.p90), 0.0, 1.0);
    const char* color = palette[i % 8];
    body << "<rect class=\"pt\" data-series=\"" << esc(s.name) << "\" data-x=\"" << num(s.x)
         << "\" data-y=\"" << num(st.median) << "\" x=\"" << px(x0) << "\" y=\"" << px(y + 4)
         << "\" width=\"" << px(std::max(1.0, xm - x0)) << "\" height=\"" << px(row_h - 8)
         << "\" fill=\"" << color << "\"><title>" << esc(s.name) << ": "
         << esc(format_value(st.median, s.unit)) << " (p10 " << esc(format_value(st.p10, s.unit))
         << ", p90 " << esc(format_value(st.p90, s.unit)) << ")</title></rect>";
    body << "<line class=\"whisker\" x1=\"" << px(a) << "\" x2=\"" << px(b) << "\" y1=\""
         << px(y + row_h / 2) << "\" y2=\"" << px(y + row_h / 2) << "\"/>";
    // After the bar and its whisker, so the whisker never strikes through the value.
    body << "<text x=\"" << px(std::max(xm, b) + 6) << "\" y=\"" << px(y + 16)
         << "\" class=\"val\">" << esc(format_value(st.median, s.unit)) << "</text>";
    ++points;
  }
  const double ay = top + row_h * static_cast<double>(r.data.size()) + 4;
  body << "<line class=\"axis\" x1=\"" << px(label_w) << "\" x2=\"" << px(label_w + plot_w)
       << "\" y1=\"" << px(ay) << "\" y2=\"" << px(ay) << "\"/>";
  if (points > 0)
    for (double t : ticks(sc)) {
      const double x = label_w + plot_w * sc(t);
      body << "<text x=\"" << px(x) << "\" y=\"" << px(ay + 16)
           << "\" text-anchor=\"middle\" class=\"tick\">" << esc(format_value(t, unit))
           << "</text>";
    }
  body << "<text x=\"" << px(label_w + plot_w / 2) << "\" y=\"" << px(ay + 30)
       << "\" text-anchor=\"middle\" class=\"axislbl\">" << esc(r.chart.y_label) << "</text>";
  o << "<svg class=\"chart\" data-points=\"" << points
    << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(W) << "\" height=\"" << px(H)
    << "\" viewBox=\"0 0 " << px(W) << " " << px(H) << "\" role=\"img\" aria-label=\""
    << esc(r.title) << "\">" << body.str() << "</svg>";
  return o.str();
}

std::string line_chart(const result& r) {
  double legend = 0;
  for (const auto& s : r.data)
    if (s.has_data()) legend = std::max(legend, label_width(s.group));
  // The legend (a 12 px swatch, then the group's name) sits right of the plot.
  const double L = 90, pw = 450, R = std::max(120.0, 34 + legend + 12), T = 14, B = 48;
  const double W = L + pw + R, H = 360, ph = H - T - B;
  std::map<std::string, std::vector<const series*>> groups;
  std::vector<std::string> order;
  double xlo = INFINITY, xhi = 0, ylo = INFINITY, yhi = 0;
  for (const auto& s : r.data) {
    if (!s.has_data()) continue;
    if (!groups.count(s.group)) order.push_back(s.group);
    groups[s.group].push_back(&s);
    xlo = std::min(xlo, s.x);
    xhi = std::max(xhi, s.x);
    ylo = std::min(ylo, s.stats().median);
    yhi = std::max(yhi, s.stats().median);
  }
  const std::string unit = unit_of(r);
  std::ostringstream body;
  int points = 0;
  if (!order.empty()) {
    const scale sx = r.chart.log_x ? make_scale(xlo, xhi, true, false)
                                   : scale{std::min(0.0, xlo), xhi * 1.05, false};
    const scale sy = make_scale(ylo, yhi, r.chart.log_y, true);
    auto X = [&](double v) { return L + pw * std::clamp(sx(v), 0.0, 1.0); };
    auto Y = [&](double v) { return T + ph * (1 - std::clamp(sy(v), 0.0, 1.0)); };
    for (double t : ticks(sy)) {
      body << "<line class=\"grid\" x1=\"" << px(L) << "\" x2=\"" << px(L + pw) << "\" y1=\""
           << px(Y(t)) << "\" y2=\"" << px(Y(t)) << "\"/><text x=\"" << px(L - 6) << "\" y=\""
           << px(Y(t) + 4) << "\" text-anchor=\"end\" class=\"tick\">" << esc(format_value(t, unit))
           << "</text>";
    }
    std::vector<double> xs;
    for (const auto& [g, v] : groups)
      for (const series* s : v) xs.push_back(s->x);
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    double last_x = -1e9;
    for (double t : xs) {
      if (X(t) - last_x < 34) continue;  // keep tick labels from overlapping
      last_x = X(t);
      const std::string label = r.chart.x_unit.empty() ? num(t) : format_value(t, r.chart.x_unit);
      body << "<text x=\"" << px(X(t)) << "\" y=\"" << px(T + ph + 16)
           << "\" text-anchor=\"middle\" class=\"tick\">" << esc(label) << "</text>";
    }
    body << "<line class=\"axis\" x1=\"" << px(L) << "\" x2=\"" << px(L + pw) << "\" y1=\""
         << px(T + ph) << "\" y2=\"" << px(T + ph) << "\"/><line class=\"axis\" x1=\"" << px(L)
         << "\" x2=\"" << px(L) << "\" y1=\"" << px(T) << "\" y2=\"" << px(T + ph) << "\"/>";
    for (std::size_t gi = 0; gi < order.size(); ++gi) {
      auto v = groups[order[gi]];
      std::sort(v.begin(), v.end(), [](const series* a, const series* b) { return a->x < b->x; });
      const char* color = palette[gi % 8];
      std::string path;
      for (const series* s : v)
        path += (path.empty() ? "" : " ") + px(X(s->x)) + "," + px(Y(s->stats().median));
      body << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\""
           << path << "\"/>";
      for (const series* s : v) {
        const auto st = s->stats();
        body << "<line class=\"whisker\" x1=\"" << px(X(s->x)) << "\" x2=\"" << px(X(s->x))
             << "\" y1=\"" << px(Y(st.p10)) << "\" y2=\"" << px(Y(st.p90)) << "\" stroke=\""
             << color << "\"/>";
        body << "<circle class=\"pt\" data-series=\"" << esc(s->name) << "\" data-x=\"" << num(s->x)
             << "\" data-y=\"" << num(st.median) << "\" cx=\"" << px(X(s->x)) << "\" cy=\""
             << px(Y(st.median)) << "\" r=\"4\" fill=\"" << color << "\"><title>" << esc(s->name)
             << ": " << esc(format_value(st.median, s->unit)) << "</title></circle>";
        ++points;
      }
      const double ly = T + 10 + 20 * static_cast<double>(gi);
      body << "<rect x=\"" << px(L + pw + 16) << "\" y=\"" << px(ly - 8)
           << "\" width=\"12\" height=\"12\" fill=\"" << color << "\"/><text x=\""
           << px(L + pw + 34) << "\" y=\"" << px(ly + 2) << "\" class=\"lbl\">" << esc(order[gi])
           << "</text>";
    }
    body << "<text x=\"" << px(L + pw / 2) << "\" y=\"" << px(H - 8)
         << "\" text-anchor=\"middle\" class=\"axislbl\">" << esc(r.chart.x_label)
         << (r.chart.log_x ? " (log scale)" : "") << "</text>";
    body << "<text transform=\"translate(14," << px(T + ph / 2)
         << ") rotate(-90)\" text-anchor=\"middle\" class=\"axislbl\">" << esc(r.chart.y_label)
         << (r.chart.log_y ? " (log scale)" : "") << "</text>";
  } else {
    body << "<text x=\"" << px(W / 2) << "\" y=\"" << px(H / 2)
         << "\" text-anchor=\"middle\" class=\"absent\">no figures</text>";
  }
  std::ostringstream o;
  o << "<svg class=\"chart\" data-points=\"" << points
    << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(W) << "\" height=\"" << px(H)
    << "\" viewBox=\"0 0 " << px(W) << " " << px(H) << "\" role=\"img\" aria-label=\""
    << esc(r.title) << "\">" << body.str() << "</svg>";
  return o.str();
}

void html_table(std::ostringstream& o, const table& t) {
  o << "<table><thead><tr>";
  for (const auto& c : t.columns) o << "<th>" << esc(c) << "</th>";
  o << "</tr></thead><tbody>";
  for (const auto& row : t.rows) {
    o << "<tr>";
    for (const auto& c : row) o << "<td>" << esc(c) << "</td>";
    o << "</tr>";
  }
  o << "</tbody></table>";
}

const char* css = R"CSS(
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td:not(:first-child):not(:last-child){white-space:nowrap}.v{font-weight:600;padding:1px 8px;border-radius:9px;white-space:nowrap}
.confirmed{background:#d8f3dc;color:#1b5e20}.refuted{background:#fde2e1;color:#b71c1c}.mixed{background:#fff3cd;color:#7a5b00}
.not-measured{background:#eee;color:#555}.claim{font-size:1.05em}.method{color:#555;font-size:13px}
svg.chart{display:block;margin:.8em 0;max-width:100%;height:auto}svg .lbl{font-size:12px;fill:#333}svg .val{font-size:11px;fill:#333}
svg .tick{font-size:11px;fill:#666}svg .axislbl{font-size:12px;fill:#444}svg .absent{font-size:12px;fill:#999;font-style:italic}
svg .axis{stroke:#999}svg .grid{stroke:#eee}svg .whisker{stroke:#333;stroke-width:1.2}
)CSS";

std::string verdict_class(verdict_kind v) {
  std::string s = to_string(v);
  std::replace(s.begin(), s.end(), ' ', '-');
  return s;
}

}  // namespace

std::string render_html(const machine_info& m, const config& cfg,
                        const std::vector<result>& results) {
  std::ostringstream o;
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>crew bench — "
    << esc(m.hostname) << "</title><style>" << css << "</style></head><body>";
  o << "<h1>crew bench</h1><p>Threads against processes, measured on this machine: "
    << esc(m.cpu_model) << ", " << m.cores << " cores (" << esc(describe_layout(m)) << "), "
    << esc(format_value(static_cast<double>(m.memory_bytes), "B")) << ", " << esc(m.kernel)
    << ". crew " << esc(m.crew_version) << ", built with " << esc(m.compiler) << ". "
    << (cfg.quick ? "Quick run" : "Full run") << ": " << cfg.repeat
    << " measured runs per figure after " << cfg.warmup
    << " discarded warm-up run(s); figures are medians, whiskers span p10–p90. Load average at "
       "start: "
    << num(m.load_average)
    << (m.load_average > 0.5 * m.cores ? " (busy machine: scaling figures read low)" : "")
    << ".</p>";
  o << "<h2 id=\"summary\">Summary</h2><table "
       "class=\"summary\"><thead><tr><th>claim</th><th>measured "
       "here</th><th>verdict</th></tr></thead><tbody>";
  for (const auto& r : results)
    o << "<tr><td><a href=\"#" << esc(r.id) << "\">" << esc(r.title) << "</a>: " << esc(r.claim)
      << "</td><td>" << esc(r.measured) << "</td><td><span class=\"v " << verdict_class(r.verdict)
      << "\">" << esc(to_string(r.verdict)) << "</span></td></tr>";
  o << "</tbody></table>";
  for (const auto& r : results) {
    o << "<section class=\"experiment\" id=\"" << esc(r.id) << "\"><h2>" << esc(r.title) << "</h2>";
    o << "<p class=\"claim\"><b>Claim:</b> " << esc(r.claim) << "</p>";
    o << "<p><span class=\"v " << verdict_class(r.verdict) << "\">" << esc(to_string(r.verdict))
      << "</span> " << esc(r.verdict_text) << "</p>";
    o << (r.chart.kind == chart_kind::lines ? line_chart(r) : bar_chart(r));
    html_table(o, series_table(r));
    if (!r.derived.rows.empty()) html_table(o, r.derived);
    for (const auto& how : mechanism_lines(r))
      o << "<p class=\"method\"><b>How:</b> " << esc(how) << "</p>";
    for (const auto& n : r.notes) o << "<p class=\"method\">" << esc(n) << "</p>";
    o << "<p class=\"method\"><b>How it was measured:</b> " << esc(r.method) << " ("
      << num(r.seconds) << " s)</p></section>";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace crew::lab
