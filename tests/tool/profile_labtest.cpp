// crew advise's measurement of a command: CPU against wall, crashes, time budget, bad commands;
// and the CLI's one-line errors.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

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

// A file of `bytes` (sparse: cheap to make, and read back as zeros) removed at the end.
class temp_file {
 public:
  explicit temp_file(std::uintmax_t bytes, const char* tag = "input")
      : path_(std::filesystem::temp_directory_path() /
              ("crew-advise-" + std::string(tag) + "-" + std::to_string(::getpid()))) {
    std::ofstream(path_).close();
    std::filesystem::resize_file(path_, bytes);
  }
  ~temp_file() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(Profile, FilesNamedOnTheCommandLineAreTheInput) {
  temp_file big(std::uintmax_t{80} << 20);
  temp_file small(1000, "small");
  std::vector<command_run> raw;
  const auto p = profile_command({"cat", big.path()}, 1, 60, &raw);
  EXPECT_DOUBLE_EQ(p.arg_bytes, double(std::uintmax_t{80} << 20));
  EXPECT_DOUBLE_EQ(p.result_bytes, double(std::uintmax_t{80} << 20));
  // --opt=path counts; a path named twice counts once; words that are not files do not count.
  const auto in = named_inputs(
      {"prog", big.path(), "--opt=" + small.path(), "not-a-file", big.path()}, "/dev/null");
  EXPECT_EQ(in.files.size(), 2u);
  EXPECT_DOUBLE_EQ(in.file_bytes, double(std::uintmax_t{80} << 20) + 1000);
  // cat read the file: the /proc/<pid>/io counters say so.
  ASSERT_EQ(raw.size(), 1u);
  ASSERT_TRUE(raw[0].io.known);
  EXPECT_GE(raw[0].io.read_chars, std::uint64_t{80} << 20);
  EXPECT_GE(raw[0].io.write_chars, std::uint64_t{80} << 20);
  const io_profile io = summarize_io(raw);
  EXPECT_TRUE(io.known);
  EXPECT_GE(io.read_chars, double(std::uintmax_t{80} << 20));
}

TEST(Profile, StandardInputIsMeasured) {
  temp_file data(12345, "stdin");
  std::vector<command_run> raw;
  const auto p = profile_command({"cat"}, 1, 60, &raw, data.path());
  EXPECT_DOUBLE_EQ(p.arg_bytes, 12345);
  EXPECT_DOUBLE_EQ(p.result_bytes, 12345);  // cat copied its stdin to its stdout
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_GE(raw[0].io.read_chars, 12345u);
}

TEST(Profile, WaitingIsWallMinusCpu) {
  std::vector<command_run> raw;
  (void)profile_command({"sleep", "0.3"}, 1, 60, &raw);
  const io_profile io = summarize_io(raw);
  EXPECT_GE(io.waiting_seconds, 0.25);
}

TEST(Profile, CopiesAtOnceFollowTheWorkers) {
  recommendation r;
  r.model = execution_model::processes;
  r.workers = 6;
  EXPECT_EQ(copies_at_once(r), 6u);
  r.model = execution_model::hybrid;
  r.threads_per_worker = 4;
  EXPECT_EQ(copies_at_once(r), 24u);
  r.workers = 0;
  EXPECT_EQ(copies_at_once(r), 1u);
}

struct cli_result {
  int code;
  std::string output;
};

// `redirect` says where the tool's stderr goes: "2>&1" merges it into the output read here,
// "2>/dev/null" keeps the output to standard output alone.
cli_result crew_cli(const std::string& args, const std::string& redirect = "2>&1") {
  const std::string cmd = std::string(CREW_TOOL_PATH) + " " + args + " " + redirect;
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
}

// The large-data rule fires for a command whose input file is large: the data it reads is
// measured, not the length of its command line.
TEST(AdviseCli, LargeInputFileIsSeenAndCopiesAreRecommended) {
  temp_file big(std::uintmax_t{80} << 20, "cli");
  const auto r = crew_cli("advise --runs 1 --json - -- cat " + big.path(), "2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output.substr(0, 300);
  EXPECT_DOUBLE_EQ(j["inputs"]["file_bytes"].get<double>(), double(std::uintmax_t{80} << 20));
  EXPECT_GE(j["io"]["read_chars"].get<double>(), double(std::uintmax_t{80} << 20));
  EXPECT_GE(j["copies_at_once"].get<unsigned>(), 1u);
  bool data_reason = false;
  for (const auto& reason : j["recommendation"]["reasons"])
    data_reason =
        data_reason || reason.get<std::string>().find("each task moves") != std::string::npos;
  EXPECT_TRUE(data_reason) << j["recommendation"].dump();
  const auto text = crew_cli("advise --runs 1 --stdin " + big.path() + " -- wc -c");
  EXPECT_NE(text.output.find("input: standard input"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("80.0 MiB"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("of the command at once"), std::string::npos) << text.output;
  EXPECT_EQ(crew_cli("advise --stdin /no/such/file -- true").code, 1);
}

// docs/bench.md and docs/advise.md: a bad option exits 2 with one line saying why — CLI11's own
// parse errors included (they carry codes from 100 up).
TEST(Cli, EveryBadOptionExitsTwo) {
  for (const char* args : {"bench --repeat banana", "bench --no-such-option", "bench --workers x",
                           "advise --runs banana -- true", "advise --budget", "no-such-command"}) {
    const auto r = crew_cli(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("terminate"), std::string::npos) << args;
  }
  EXPECT_EQ(crew_cli("--help").code, 0);
  EXPECT_EQ(crew_cli("bench --help").code, 0);
}

TEST(Cli, RepeatZeroIsAnErrorNotTheDefault) {
  for (const char* args : {"bench --repeat 0 --only switching", "bench --repeat -3",
                           "bench --repeat 1001 --only switching"}) {
    const auto r = crew_cli(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find("--repeat must be between 1 and 1000"), std::string::npos) << r.output;
  }
}

TEST(Cli, AdviseWithoutACommandSaysWhereItGoes) {
  const auto r = crew_cli("advise --runs 2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("give the command to measure after --"), std::string::npos) << r.output;
}

TEST(Cli, BenchJsonDashWritesTheReportToStandardOutput) {
  const auto r = crew_cli("bench --quick --repeat 1 --only switching --json -", "2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "stdout is not JSON alone: " << r.output.substr(0, 300);
  EXPECT_EQ(j["schema"], "crew-bench/1");
  EXPECT_FALSE(std::filesystem::exists("-"));
  EXPECT_EQ(crew_cli("bench --only switching --json - --html -").code, 2);
}

TEST(Cli, AdviseJsonDashWritesTheAdviceToStandardOutput) {
  const auto r = crew_cli("advise --runs 1 --json - -- true", "2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "stdout is not JSON alone: " << r.output.substr(0, 300);
  EXPECT_EQ(j["schema"], "crew-advise/1");
  EXPECT_GT(j["calibration_seconds"].get<double>(), 0);  // no --bench: it calibrated
  EXPECT_FALSE(std::filesystem::exists("-"));
}

}  // namespace
}  // namespace crew::lab
