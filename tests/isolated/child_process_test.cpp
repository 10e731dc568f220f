// crew::run_child and crew::run_command: how a child ended, what it wrote, what it cost, and
// that nothing it started outlives it. Real processes, real signals.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "crew/child_process.hpp"

namespace {

using namespace std::chrono_literals;

TEST(RunChild, ReturnsExitCodeAndOutput) {
  const crew::child_result r = crew::run_child([](int out) {
    [[maybe_unused]] auto n = ::write(out, "hello", 5);
    return 3;
  });
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "hello");
  EXPECT_EQ(r.output_bytes, 5u);
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.pid, 0);
}

TEST(RunChild, OutputWrittenBeforeACrashSurvivesIt) {
  const crew::child_result r = crew::run_child([](int out) {
    [[maybe_unused]] auto n = ::write(out, "partial", 7);
    ::raise(SIGSEGV);
    return 0;
  });
  EXPECT_FALSE(r.exited);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.output, "partial");
}

TEST(RunChild, AnExceptionIsExitCode70) {
  const crew::child_result r = crew::run_child([](int) -> int { throw std::runtime_error("no"); });
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 70);
}

TEST(RunChild, TimeoutSendsTermThenKill) {
  crew::child_options o;
  o.timeout = 200ms;
  o.kill_grace = 100ms;
  const auto t0 = std::chrono::steady_clock::now();
  const crew::child_result r = crew::run_child(
      [](int) {
        ::signal(SIGTERM, SIG_IGN);  // only the SIGKILL after the grace ends it
        for (;;) ::pause();
        return 0;
      },
      o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
}

TEST(RunChild, MemoryLimitKillsTheChild) {
  crew::child_options o;
  o.memory_limit = std::size_t{64} << 20;
  o.timeout = 60s;
  const crew::child_result r = crew::run_child(
      [](int) {
        std::vector<char*> blocks;
        for (;;) {
          auto* p = new char[std::size_t{8} << 20];
          std::memset(p, 1, std::size_t{8} << 20);
          blocks.push_back(p);
          if (blocks.size() > 200) ::pause();  // 1.6 GiB: the limit must have fired long before
        }
        return 0;
      },
      o);
  EXPECT_TRUE(r.out_of_memory);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GT(r.peak_resident_bytes, std::size_t{64} << 20);
}

TEST(RunChild, StderrIsCapturedToItsTail) {
  crew::child_options o;
  o.child_stderr = crew::child_options::stderr_mode::capture;
  o.stderr_tail_bytes = 10;
  const crew::child_result r = crew::run_child(
      [](int) {
        std::fputs("0123456789abcdefghij", stderr);
        return 0;
      },
      o);
  EXPECT_EQ(r.stderr_tail, "abcdefghij");
}

TEST(RunChild, CpuTimeAndIoCountersAreMeasured) {
  const auto path =
      std::filesystem::temp_directory_path() / ("crew-child-io-" + std::to_string(::getpid()));
  { std::ofstream(path) << std::string(1 << 20, 'x'); }
  const crew::child_result r = crew::run_child([&](int) {
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    volatile unsigned long spin = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 100ms) spin = spin + 1;
    return all.size() == (1u << 20) ? 0 : 1;
  });
  std::filesystem::remove(path);
  EXPECT_TRUE(r.ok());
  EXPECT_GT(r.cpu_seconds, 0.01);  // it spun 100 ms of wall time; CPU share not asserted
  EXPECT_GE(r.wall_seconds, 0.1);
  ASSERT_TRUE(r.io.known);
  EXPECT_GE(r.io.read_chars, 1u << 20);
}

// own_process_group: a grandchild that would outlive its parent is killed with it.
TEST(RunChild, NothingInItsGroupOutlivesIt) {
  crew::child_options o;
  o.own_process_group = true;
  const crew::child_result r = crew::run_child(
      [](int out) {
        const pid_t grandchild = ::fork();
        if (grandchild == 0) {
          for (;;) ::pause();
        }
        [[maybe_unused]] auto n = ::write(out, &grandchild, sizeof grandchild);
        return 0;
      },
      o);
  ASSERT_EQ(r.output.size(), sizeof(pid_t));
  pid_t grandchild = 0;
  std::memcpy(&grandchild, r.output.data(), sizeof grandchild);
  // The grandchild was reparented (to init or a subreaper), so poll for it to be gone.
  bool gone = false;
  for (int i = 0; i < 2000 && !gone; ++i) {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string text;
    std::getline(stat, text);
    const auto paren = text.rfind(')');
    gone = !stat || (paren != std::string::npos && text[paren + 2] == 'Z');
    if (!gone) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " outlived the call";
}

TEST(RunCommand, RunsAProgramWithStdinAndCountsItsOutput) {
  const auto path =
      std::filesystem::temp_directory_path() / ("crew-child-stdin-" + std::to_string(::getpid()));
  { std::ofstream(path) << "abc\ndef\n"; }
  crew::child_options o;
  o.stdin_path = path.string();
  o.stdout_to_output = true;
  const crew::child_result r = crew::run_command({"wc", "-l"}, o);
  std::filesystem::remove(path);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output.substr(0, 1), "2");
}

TEST(RunCommand, MissingProgramIsAClearError) {
  try {
    (void)crew::run_command({"/no/such/program"});
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("cannot run '/no/such/program'"), std::string::npos);
  }
  EXPECT_THROW((void)crew::run_command({}), std::invalid_argument);
  crew::child_options o;
  o.stdin_path = "/no/such/input";
  EXPECT_THROW((void)crew::run_command({"true"}, o), std::system_error);
}

TEST(RunChild, ConcurrentCallersGetTheirOwnChildren) {
  std::vector<std::thread> callers;
  std::vector<std::string> outputs(4);
  for (int i = 0; i < 4; ++i)
    callers.emplace_back([i, &outputs] {
      crew::child_options o;
      o.stdout_to_output = true;
      outputs[static_cast<std::size_t>(i)] =
          crew::run_command({"echo", std::to_string(i)}, o).output;
    });
  for (auto& t : callers) t.join();
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(outputs[static_cast<std::size_t>(i)], std::to_string(i) + "\n");
}

}  // namespace
