// Opens HTML reports in headless Chromium: they must load without console errors (no script,
// no network), every chart must hold the data points it announces, and no text of a chart —
// bar labels, values, ticks, legends — may be cut off by the chart's edges.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "lab/experiment.hpp"
#include "lab/machine.hpp"
#include "lab/report.hpp"

namespace crew::lab {
namespace {

namespace fs = std::filesystem;

constexpr const char* chromium = "/usr/bin/chromium";

struct page {
  std::string dom;
  std::string log;
  int code = -1;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Loads `html` with a fresh profile and returns the DOM after load and Chromium's log.
page load(const fs::path& html, const fs::path& dir) {
  const fs::path profile = dir / "profile", dom = dir / "dom.html", log = dir / "chromium.log";
  const std::string cmd =
      std::string("timeout 90 ") + chromium +
      " --headless --no-sandbox --disable-gpu --no-first-run"
      " --disable-background-networking --disable-component-update --disable-sync"
      " --window-size=1200,900 --enable-logging=stderr --v=0 --user-data-dir=" +
      profile.string() + " --dump-dom file://" + html.string() + " > " + dom.string() + " 2> " +
      log.string();
  page p;
  const int st = std::system(cmd.c_str());
  p.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  p.dom = slurp(dom);
  p.log = slurp(log);
  return p;
}

// The report has no script of its own; this one is added to a copy of it for the test. For each
// <text> of each chart it compares the box the browser drew it in (transforms included) with the
// chart's box, and writes every text that sticks out into the DOM, which --dump-dom returns.
constexpr const char* clip_probe = R"JS(<script>
window.addEventListener('load', () => {
  const out = [];
  let texts = 0;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      ++texts;
      const r = t.getBoundingClientRect();
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
          r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        out.push(t.textContent + ' [' + Math.round(r.left - box.left) + '..' +
                 Math.round(r.right - box.left) + ' of ' + Math.round(box.width) + ']');
    }
  }
  const p = document.createElement('pre');
  p.id = 'clip-report';
  p.textContent = 'texts=' + texts + '\n' + out.join('\n');
  document.body.appendChild(p);
});
</script>)JS";

// What clip_probe found: the number of chart texts it checked and every clipped one.
struct clip_result {
  int texts = -1;
  std::string clipped;
};

clip_result probe_clipping(const fs::path& html, const fs::path& dir) {
  std::string text = slurp(html);
  const auto end = text.rfind("</body>");
  text.insert(end == std::string::npos ? text.size() : end, clip_probe);
  const fs::path probed = dir / "probed.html";
  std::ofstream(probed) << text;
  const page p = load(probed, dir);
  clip_result r;
  const std::regex re(R"re(<pre id="clip-report">texts=(\d+)\n?([\s\S]*?)</pre>)re");
  std::smatch m;
  if (std::regex_search(p.dom, m, re)) {
    r.texts = std::stoi(m[1]);
    r.clipped = m[2];
  }
  return r;
}

void expect_nothing_clipped(const fs::path& html, const fs::path& dir) {
  const clip_result c = probe_clipping(html, dir);
  EXPECT_GT(c.texts, 0) << "the probe did not run";
  EXPECT_EQ(c.clipped, "") << "chart texts cut off by the chart's edges:\n" << c.clipped;
}

int count(const std::string& s, const std::regex& re) {
  return static_cast<int>(
      std::distance(std::sregex_iterator(s.begin(), s.end(), re), std::sregex_iterator()));
}

// Every <svg class="chart" data-points="N"> holds exactly N class="pt" elements, N ≥ 1.
void expect_charts_drawn(const std::string& dom, int expected_charts) {
  const std::regex chart_re(R"re(<svg class="chart" data-points="(\d+)"[\s\S]*?</svg>)re");
  const std::regex pt_re(R"re(class="pt")re");
  int charts = 0;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), chart_re);
       it != std::sregex_iterator(); ++it) {
    ++charts;
    const int announced = std::stoi((*it)[1]);
    const std::string svg = (*it)[0];
    EXPECT_GE(announced, 1) << "a chart without data points";
    EXPECT_EQ(count(svg, pt_re), announced);
    EXPECT_EQ(svg.find("nan"), std::string::npos) << "NaN coordinates in a chart";
  }
  EXPECT_EQ(charts, expected_charts);
}

void expect_clean_console(const page& p) {
  EXPECT_EQ(p.code, 0) << p.log;
  EXPECT_EQ(p.log.find(":CONSOLE"), std::string::npos) << p.log;
}

class BrowserReport : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(chromium, X_OK) != 0)
      GTEST_SKIP() << "chromium is not installed (scripts/setup.sh)";
    char tmpl[] = "/tmp/crew-browser-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

result bars_and_lines(chart_kind kind) {
  result r;
  r.id = kind == chart_kind::bars ? "bars" : "lines";
  r.title = r.id;
  r.claim = "claim <with> & markup";
  r.chart.kind = kind;
  r.chart.log_x = r.chart.log_y = kind == chart_kind::lines;
  r.chart.x_unit = "B";
  for (int g = 0; g < 2; ++g)
    for (int i = 0; i < 4; ++i) {
      series s;
      s.name = "group " + std::to_string(g) + " size " + std::to_string(i);
      s.group = "group " + std::to_string(g);
      s.x = std::pow(64.0, i + 1);
      s.unit = "s";
      s.samples = {1e-6 * (i + 1) * (g + 1), 1.2e-6 * (i + 1) * (g + 1),
                   0.9e-6 * (i + 1) * (g + 1)};
      r.data.push_back(s);
    }
  r.data.push_back(absent("crew process_pool", series_state::not_built, "not built yet"));
  r.verdict = verdict_kind::mixed;
  return r;
}

TEST_F(BrowserReport, SyntheticReportRendersEveryPoint) {
  machine_info m = describe_machine();
  config cfg;
  const std::string html =
      render_html(m, cfg, {bars_and_lines(chart_kind::bars), bars_and_lines(chart_kind::lines)});
  const fs::path file = dir_ / "report.html";
  std::ofstream(file) << html;
  const page p = load(file, dir_);
  expect_clean_console(p);
  expect_charts_drawn(p.dom, 2);
  EXPECT_EQ(count(p.dom, std::regex(R"re(class="pt")re")), 16);
  EXPECT_NE(p.dom.find("not built yet"), std::string::npos);
  EXPECT_NE(p.dom.find("claim &lt;with&gt; &amp; markup"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"),
            html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace
  expect_nothing_clipped(file, dir_);
}

// The names that were cut off in real reports: a long bar label on the left, a long legend
// entry on the right.
TEST_F(BrowserReport, LongNamesAreNotClipped) {
  result bars = bars_and_lines(chart_kind::bars);
  bars.data[0].name = "crew process_pool start-up to first result (forkserver, 2 workers)";
  bars.data[1].name =
      "processes: crew shared-memory ring between the bench and a forked echo "
      "child, 64.0 MiB";
  result lines = bars_and_lines(chart_kind::lines);
  for (auto& s : lines.data)
    if (s.group == "group 1") s.group = "processes: crew process_pool task (encode, rings, decode)";
  const fs::path file = dir_ / "long.html";
  std::ofstream(file) << render_html(describe_machine(), config{}, {bars, lines});
  const page p = load(file, dir_);
  expect_clean_console(p);
  expect_charts_drawn(p.dom, 2);
  expect_nothing_clipped(file, dir_);

  // The probe itself can fail: a label pushed past the edge is reported.
  std::string html = slurp(file);
  const std::string needle = "class=\"lbl\">crew process_pool start-up";
  const auto at = html.find(needle);
  ASSERT_NE(at, std::string::npos);
  const auto x = html.rfind("x=\"", at);
  html.replace(x, html.find('"', x + 3) - x + 1, "x=\"40\"");
  std::ofstream(file) << html;
  EXPECT_NE(probe_clipping(file, dir_).clipped.find("crew process_pool start-up"),
            std::string::npos);
}

TEST_F(BrowserReport, RealBenchReportRendersEveryChart) {
  const fs::path file = dir_ / "bench.html", json = dir_ / "bench.json";
  const std::string cmd = std::string(CREW_TOOL_PATH) +
                          " bench --quick --repeat 2 --only switching,cpu --html " + file.string() +
                          " --json " + json.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const page p = load(file, dir_);
  expect_clean_console(p);
  expect_charts_drawn(p.dom, 2);
  EXPECT_NE(p.dom.find("Summary"), std::string::npos);
  // crew's own pools are measured next to raw threads and processes.
  EXPECT_NE(p.dom.find("crew process_pool"), std::string::npos);
  EXPECT_NE(p.dom.find("crew hybrid_pool"), std::string::npos);
  expect_nothing_clipped(file, dir_);
}

}  // namespace
}  // namespace crew::lab
