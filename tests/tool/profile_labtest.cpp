// crew advise's measurement of a command: CPU against wall, crashes, time budget, bad commands;
// and the CLI's one-line errors.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "advise/profile.hpp"

namespace crew::lab {
namespace {

TEST(Profile, BusyCommandIsCpuBound) {
  const auto p =
      profile_command({"sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"}, 1, 60);
  EXPECT_EQ(p.runs, 1u);
  EXPECT_EQ(p.crashes, 0u);
  EXPECT_GT(p.wall_seconds, 0);
  // The loop burns CPU however busy the machine is; the share of wall time it gets is not asserted.
  EXPECT_GT(p.cpu_seconds, 0.05);
  EXPECT_LE(p.cpu_seconds,
            p.wall_seconds * 1.05 + 0.02);  // one thread cannot use more than wall time
  EXPECT_GT(p.peak_rss_bytes, 0);
}

TEST(Profile, SleepingCommandIsIoBound) {
  const auto p = profile_command({"sleep", "0.3"}, 2, 60);
  EXPECT_EQ(p.runs, 2u);
  EXPECT_GE(p.wall_seconds, 0.29);
  EXPECT_LT(p.cpu_fraction(), 0.2);
}

TEST(Profile, OutputIsCounted) {
  const auto p = profile_command({"head", "-c", "12345", "/dev/zero"}, 1, 60);
  EXPECT_DOUBLE_EQ(p.result_bytes, 12345);
}

TEST(Profile, CrashIsRecordedWithItsSignal) {
  const auto p = profile_command({"sh", "-c", "kill -SEGV $$"}, 2, 60);
  EXPECT_EQ(p.crashes, 2u);
  EXPECT_NE(p.crash_detail.find("signal 11"), std::string::npos);
}

TEST(Profile, NeverEndingCommandIsStoppedAtTheBudget) {
  // The shell ignores SIGTERM, so this also checks the SIGKILL that follows.
  const auto p = profile_command({"sh", "-c", "trap '' TERM; sleep 100 & sleep 100"}, 3, 1.0);
  EXPECT_EQ(p.timeouts, 1u);
  EXPECT_LT(p.max_wall_seconds, 20);
}

TEST(Profile, MissingCommandIsAClearError) {
  try {
    run_command({"/no/such/program"}, 5);
    FAIL() << "expected advise_error";
  } catch (const advise_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run '/no/such/program'"), std::string::npos);
  }
}

struct cli_result {
  int code;
  std::string output;
};

cli_result crew_cli(const std::string& args) {
  const std::string cmd = std::string(CREW_TOOL_PATH) + " " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (f && std::fgets(buf.data(), buf.size(), f)) out += buf.data();
  const int st = f ? ::pclose(f) : -1;
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(AdviseCli, MissingCommandFailsInOneLine) {
  const auto r = crew_cli("advise --bench /dev/null -- /no/such/program");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.output.find("terminate"), std::string::npos);
}

TEST(AdviseCli, CrashingCommandFailsWithExitThree) {
  const auto r = crew_cli("advise --runs 2 -- sh -c 'kill -SEGV $$'");
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.output.find("crashed on every run"), std::string::npos);
}

TEST(AdviseCli, NeverEndingCommandFailsWithExitFour) {
  const auto r = crew_cli("advise --budget 1 -- sleep 100");
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.output.find("did not finish"), std::string::npos);
}

TEST(AdviseCli, SleepingCommandGetsThreadsAdvice) {
  const auto r = crew_cli("advise --runs 2 -- sleep 0.2");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Recommendation: threads"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("I/O-bound"), std::string::npos);
}

TEST(BenchCli, VersionAndBadOptions) {
  EXPECT_EQ(crew_cli("--version").code, 0);
  const auto r = crew_cli("bench --only bogus");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("unknown experiment 'bogus'"), std::string::npos);
  EXPECT_NE(crew_cli("bench --repeat banana").code, 0);
}

}  // namespace
}  // namespace crew::lab
