// bench_roles: how soon a killed role serves again, against the floor it stands on.
//
//   bench_roles [--reps N]
//
// Series, N runs each, alternating:
//   bare fork+exec+ready  this program forks, the child execs this binary in its ready mode,
//                         which writes one byte to CREW_READY_FD; timed from fork to that byte.
//   group restart (command)  a crew::process_group runs the same program as a command role with
//                         await_ready; timed from SIGKILL of the role to the moment status()
//                         shows it running again with a new pid (the caller polls status()).
//   group restart (function) the same with a function role (fork, no exec) that calls ready().
// The group's figure includes what the bare one does not: noticing the death (pidfd), reaping,
// killing the role's process group, and the caller's polling. Output: markdown with the
// machine, the load at start and end, the command, medians and ranges, and the ratio to the
// target. scripts/bench-report.sh roles keeps one run in docs/benchmarks/roles.md.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../common/machine.hpp"
#include "crew/process_group.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double micros(clock_type::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// The role program: say ready, then wait to be killed.
[[noreturn]] void ready_mode() {
  const char* fd = std::getenv("CREW_READY_FD");
  if (fd == nullptr) std::_Exit(3);
  const char byte = '\n';
  if (::write(std::atoi(fd), &byte, 1) != 1) std::_Exit(4);
  for (;;) ::pause();
}

double bare_once(const char* self) {
  int fds[2];
  if (::pipe(fds) != 0) std::abort();
  const std::string env = "CREW_READY_FD=" + std::to_string(fds[1]);
  const auto t0 = clock_type::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::setpgid(0, 0);
    ::putenv(const_cast<char*>(env.c_str()));
    ::execl(self, self, "--ready-mode", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(fds[1]);
  char byte;
  const bool ok = ::read(fds[0], &byte, 1) == 1;
  const auto t1 = clock_type::now();
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  if (!ok) std::abort();
  return micros(t1 - t0);
}

double restart_once(crew::process_group& group) {
  const pid_t old = group.pid("role");
  const auto t0 = clock_type::now();
  ::kill(old, SIGKILL);
  for (;;) {
    const auto s = group.status()[0];
    if (s.state == crew::role_state::running && s.pid != 0 && s.pid != old) break;
    std::this_thread::yield();
  }
  return micros(clock_type::now() - t0);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--ready-mode") ready_mode();
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_roles [--reps N]\n");
      return 2;
    }
  }
  if (reps < 1) {
    std::fprintf(stderr, "bench_roles: --reps must be at least 1\n");
    return 2;
  }
  const std::string load_before = crew_bench::load_average();
  const std::string self = "/proc/self/exe";
  char path[4096];
  const ssize_t n = ::readlink(self.c_str(), path, sizeof path - 1);
  if (n <= 0) return 1;
  path[n] = '\0';

  const crew::group_options options{.max_restarts = 1'000'000,
                                    .restart_window = std::chrono::seconds{1}};
  crew::process_group command_group{options};
  command_group.add_command("role", {path, "--ready-mode"}, {.await_ready = true});
  command_group.start();
  crew::process_group function_group{options};
  function_group.add("role",
                     [](crew::role_context& ctx) {
                       ctx.ready();
                       for (;;) ::pause();
                     },
                     {.await_ready = true});
  function_group.start();

  std::vector<double> bare, command, function;
  for (int r = 0; r < reps; ++r) {
    bare.push_back(bare_once(path));
    command.push_back(restart_once(command_group));
    function.push_back(restart_once(function_group));
  }
  command_group.stop();
  function_group.stop();

  std::printf("# A killed role serving again, against a bare fork + exec + ready handshake\n\n");
  std::printf("Machine: %s.  \n", crew_bench::machine().c_str());
  std::printf("Load average: %s at the start, %s at the end.  \n", load_before.c_str(),
              crew_bench::load_average().c_str());
  std::printf("Command: `bench_roles --reps %d`: %d runs of each series, alternating.\n\n", reps,
              reps);
  std::printf("| series | µs (median) | min | max |\n| --- | ---: | ---: | ---: |\n");
  const auto row = [](const char* name, const std::vector<double>& v) {
    const auto f = crew_bench::summarize(v);
    std::printf("| %s | %.1f | %.1f | %.1f |\n", name, f.median, f.min, f.max);
    return f.median;
  };
  const double b = row("bare fork+exec+ready", bare);
  const double c = row("group restart, command role (fork+exec)", command);
  const double f = row("group restart, function role (fork)", function);
  std::printf("\n| comparison | ratio | target |\n| --- | ---: | --- |\n");
  std::printf("| command role restart / bare fork+exec+ready | %.2fx | <= 3x |\n", c / b);
  std::printf("| function role restart / bare fork+exec+ready | %.2fx | |\n", f / b);
  return 0;
}
