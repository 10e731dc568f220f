#include <algorithm>

#include "lab/report.hpp"

namespace crew::lab {
namespace {

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;  // count UTF-8 lead bytes only
  return n;
}

}  // namespace

void print_aligned(std::ostream& out, const table& t) {
  std::vector<std::size_t> w(t.columns.size(), 0);
  for (std::size_t i = 0; i < t.columns.size(); ++i) w[i] = display_width(t.columns[i]);
  for (const auto& row : t.rows)
    for (std::size_t i = 0; i < row.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], display_width(row[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = "  ";
    for (std::size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      s += cell;
      if (i + 1 < w.size()) s += std::string(w[i] - display_width(cell) + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(t.columns);
  std::vector<std::string> rule;
  for (std::size_t x : w) {
    std::string r;
    for (std::size_t i = 0; i < x; ++i) r += "─";
    rule.push_back(r);
  }
  line(rule);
  for (const auto& row : t.rows) line(row);
}

table series_table(const result& r) {
  table t;
  t.columns = {"series", "median", "p10", "p90", "IQR", "n"};
  for (const auto& s : r.data) {
    if (!s.has_data()) {
      t.rows.push_back({s.name, to_string(s.state), "", "", "", s.note});
      continue;
    }
    const auto st = s.stats();
    t.rows.push_back({s.name, format_value(st.median, s.unit), format_value(st.p10, s.unit),
                      format_value(st.p90, s.unit), format_value(st.iqr, s.unit),
                      std::to_string(st.n)});
  }
  return t;
}

std::vector<std::string> mechanism_lines(const result& r) {
  std::vector<std::pair<std::string, std::vector<std::string>>> by_mechanism;
  for (const auto& s : r.data) {
    if (s.mechanism.empty()) continue;
    const std::string who = s.group.empty() ? s.name : s.group;
    auto it = std::find_if(by_mechanism.begin(), by_mechanism.end(),
                           [&](const auto& m) { return m.first == s.mechanism; });
    if (it == by_mechanism.end()) {
      by_mechanism.push_back({s.mechanism, {who}});
    } else if (std::find(it->second.begin(), it->second.end(), who) == it->second.end()) {
      it->second.push_back(who);
    }
  }
  std::vector<std::string> lines;
  for (const auto& [mechanism, users] : by_mechanism) {
    std::string line;
    for (const auto& u : users) line += (line.empty() ? "" : " and ") + u;
    lines.push_back(line + ": " + mechanism);
  }
  return lines;
}

void print_result(std::ostream& out, const result& r) {
  out << "\n== " << r.title << " (" << r.id << ") ==\n";
  out << "Claim:   " << r.claim << '\n';
  out << "Method:  " << r.method << '\n';
  out << '\n';
  print_aligned(out, series_table(r));
  if (!r.derived.rows.empty()) {
    out << '\n';
    print_aligned(out, r.derived);
  }
  for (const auto& m : mechanism_lines(r)) out << "How:     " << m << '\n';
  for (const auto& n : r.notes) out << "Note:    " << n << '\n';
  out << "Verdict: " << to_string(r.verdict) << " — " << r.verdict_text << '\n';
}

void print_summary(std::ostream& out, const std::vector<result>& results) {
  table t;
  t.columns = {"experiment", "claim", "measured here", "verdict"};
  for (const auto& r : results) t.rows.push_back({r.id, r.claim, r.measured, to_string(r.verdict)});
  out << "\n== Summary ==\n";
  print_aligned(out, t);
}

}  // namespace crew::lab
