// The JSON report's schema and the text views, on a synthetic result; and the bench command's
// bad-input handling (one line, non-zero exit, no run).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "lab/bench_command.hpp"
#include "lab/experiment.hpp"
#include "lab/report.hpp"

namespace crew::lab {
namespace {

result synthetic() {
  result r;
  r.id = "demo";
  r.title = "Demo";
  r.claim = "a claim";
  r.method = "a method";
  series s;
  s.name = "threads";
  s.unit = "s";
  s.warmup = {9};
  s.samples = {1e-6, 2e-6, 3e-6, NAN};
  r.data.push_back(s);
  r.data.push_back(absent("crew process_pool", series_state::not_built, "not built yet"));
  r.verdict = verdict_kind::confirmed;
  r.verdict_text = "because";
  r.measured = "1 µs";
  return r;
}

TEST(ReportJson, FollowsTheSchema) {
  machine_info m;
  m.cpu_model = "cpu";
  m.cores = 2;
  m.crew_version = "0.1.0";
  config cfg;
  const auto j = to_json(m, cfg, {synthetic()});
  EXPECT_EQ(j["schema"], "crew-bench/1");
  for (const char* k : {"cpu_model", "cores", "kernel", "memory_bytes", "compiler", "crew_version"})
    EXPECT_TRUE(j["machine"].contains(k)) << k;
  ASSERT_EQ(j["experiments"].size(), 1u);
  const auto& e = j["experiments"][0];
  for (const char* k :
       {"id", "claim", "method", "measured", "verdict", "verdict_text", "series", "derived"})
    EXPECT_TRUE(e.contains(k)) << k;
  EXPECT_EQ(e["verdict"], "confirmed");
  const auto& s = e["series"][0];
  EXPECT_EQ(s["warmup"].size(), 1u);
  ASSERT_EQ(s["samples"].size(), 4u);  // every raw sample, NaN as null
  EXPECT_TRUE(s["samples"][3].is_null());
  EXPECT_EQ(s["state"], "ok");
  EXPECT_TRUE(s["summary"].contains("median"));
  const auto& absent_one = e["series"][1];
  EXPECT_EQ(absent_one["state"], "not built yet");
  EXPECT_TRUE(absent_one["summary"].is_null());
  EXPECT_TRUE(absent_one["samples"].empty());
  // Round-trips through text.
  EXPECT_EQ(nlohmann::json::parse(j.dump()), j);
}

TEST(ReportTable, ShowsNotBuiltAndAligns) {
  std::ostringstream out;
  print_result(out, synthetic());
  const auto text = out.str();
  EXPECT_NE(text.find("not built yet"), std::string::npos);
  EXPECT_NE(text.find("Verdict: confirmed"), std::string::npos);
  table t{{"a", "b"}, {{"µµµ", "x"}, {"a", "y"}}};
  std::ostringstream o2;
  print_aligned(o2, t);
  // "µµµ" is 3 columns wide, so "x" and "y" start in the same column.
  const auto s = o2.str();
  const auto lx = s.find("µµµ  x"), ly = s.find("a    y");
  EXPECT_NE(lx, std::string::npos);
  EXPECT_NE(ly, std::string::npos);
}

TEST(FormatValue, PicksReadableUnits) {
  EXPECT_EQ(format_value(1.5e-6, "s"), "1.50 µs");
  EXPECT_EQ(format_value(0.25, "s"), "250 ms");
  EXPECT_EQ(format_value(1024.0 * 1024 * 3, "B"), "3.00 MiB");
  EXPECT_EQ(format_value(2, "x"), "2.00×");
  EXPECT_EQ(format_value(NAN, "s"), "n/a");
}

bench_options opts(std::vector<std::string> only, std::vector<unsigned> workers = {},
                   std::string json = {}) {
  bench_options o;
  o.only = std::move(only);
  o.workers = std::move(workers);
  o.json_path = std::move(json);
  return o;
}

TEST(BenchCommand, UnknownExperimentIsOneLineAndExitTwo) {
  std::ostringstream out, err;
  EXPECT_EQ(run_bench(opts({"nope"}), out, err), 2);
  EXPECT_NE(err.str().find("unknown experiment 'nope'"), std::string::npos);
  const std::string text = err.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_TRUE(out.str().empty());
}

TEST(BenchCommand, ImpossibleWorkerCountIsRejected) {
  std::ostringstream out, err;
  EXPECT_EQ(run_bench(opts({"cpu"}, {0}), out, err), 2);
  EXPECT_NE(err.str().find("--workers"), std::string::npos);
  EXPECT_EQ(run_bench(opts({"cpu"}, {100000}), out, err), 2);
}

TEST(BenchCommand, UnwritableOutputFailsBeforeRunning) {
  std::ostringstream out, err;
  EXPECT_EQ(run_bench(opts({"creation"}, {}, "/nonexistent-dir/x.json"), out, err), 1);
  EXPECT_NE(err.str().find("cannot write '/nonexistent-dir/x.json'"), std::string::npos);
  EXPECT_TRUE(out.str().empty());  // nothing ran
}

TEST(Registry, HasEveryExperimentOnce) {
  const char* ids[] = {"creation", "switching", "communication", "memory", "cpu",
                       "io",       "data",      "fault",         "peers"};
  EXPECT_EQ(registry().size(), std::size(ids));
  for (const char* id : ids) {
    const experiment* e = find_experiment(id);
    ASSERT_NE(e, nullptr) << id;
    EXPECT_FALSE(e->claim.empty());
  }
}

TEST(Experiments, FaultIsolationKillsOnlyASacrificialChild) {
  // The thread pool's segfault must end a child, not this test process.
  config cfg;
  cfg.quick = true;
  cfg.repeat = 1;
  cfg.warmup = 0;
  cfg.cores = 2;
  silent_progress quiet;
  const result r = find_experiment("fault")->run(cfg, quiet);
  const series* thr = find_series(r, "threads: pool process survived (1 = yes)");
  const series* proc = find_series(r, "processes: pool process survived (1 = yes)");
  ASSERT_TRUE(thr && proc);
  EXPECT_EQ(thr->stats().max, 0);   // the thread pool's process died
  EXPECT_EQ(proc->stats().min, 1);  // the process pool's lived
  const series* done = find_series(r, "processes: tasks completed of 40");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->stats().median, 39);  // only the faulting task lost
  // crew's own pools, which the verdict is taken from.
  const series* crew_thr = find_series(r, "crew thread_pool: pool process survived (1 = yes)");
  const series* crew_proc = find_series(r, "crew process_pool: pool process survived (1 = yes)");
  const series* crew_done = find_series(r, "crew process_pool: tasks completed of 40");
  ASSERT_TRUE(crew_thr && crew_proc && crew_done);
  EXPECT_EQ(crew_thr->stats().max, 0);
  EXPECT_EQ(crew_proc->stats().min, 1);
  EXPECT_EQ(crew_done->stats().median, 39);
  EXPECT_NE(r.measured.find("crew process_pool"), std::string::npos) << r.measured;
  EXPECT_EQ(r.verdict, verdict_kind::confirmed);
}

}  // namespace
}  // namespace crew::lab
