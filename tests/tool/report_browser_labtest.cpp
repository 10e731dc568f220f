// Opens HTML reports in headless Chromium: they must load without console errors (no script,
// no network) and every chart must hold the data points it announces.
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
      " --enable-logging=stderr --v=0 --user-data-dir=" +
      profile.string() + " --dump-dom file://" + html.string() + " > " + dom.string() + " 2> " +
      log.string();
  page p;
  const int st = std::system(cmd.c_str());
  p.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  p.dom = slurp(dom);
  p.log = slurp(log);
  return p;
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
}

}  // namespace
}  // namespace crew::lab
