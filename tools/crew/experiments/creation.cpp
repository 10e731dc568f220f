// Experiment 1 — creation: what starting a thread, a process, and a program costs.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <thread>

#include "experiments/common.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

extern char** environ;

namespace crew::lab {
namespace {

double thread_create_join(int count) {
  const auto t0 = clock::now();
  for (int i = 0; i < count; ++i) std::thread([] {}).join();
  return seconds_since(t0) / count;
}

double fork_wait(int count) {
  const auto t0 = clock::now();
  for (int i = 0; i < count; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    if (pid < 0) return std::nan("");
    wait_for(pid);
  }
  return seconds_since(t0) / count;
}

double spawn_wait(int count, const std::string& program) {
  char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
  const auto t0 = clock::now();
  for (int i = 0; i < count; ++i) {
    pid_t pid = 0;
    if (::posix_spawn(&pid, program.c_str(), nullptr, nullptr, argv, environ) != 0)
      return std::nan("");
    wait_for(pid);
  }
  return seconds_since(t0) / count;
}

double fork_exec_wait(int count, const std::string& program) {
  char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
  const auto t0 = clock::now();
  for (int i = 0; i < count; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execv(program.c_str(), argv);
      ::_exit(127);
    }
    if (pid < 0) return std::nan("");
    wait_for(pid);
  }
  return seconds_since(t0) / count;
}

result run(const config& cfg, progress& prog) {
  result r;
  const int threads = cfg.quick ? 200 : 1000;
  const int forks = cfg.quick ? 40 : 200;
  const int execs = cfg.quick ? 10 : 50;
  const std::size_t big = std::size_t{1} << 30;

  prog.step("thread create + join");
  r.data.push_back(
      measure(cfg, "thread create + join", "s", [&] { return thread_create_join(threads); }));
  prog.step("fork + wait (small parent)");
  r.data.push_back(
      measure(cfg, "fork + wait (small parent)", "s", [&] { return fork_wait(forks); }));

  prog.step("fork + wait (1 GiB touched in the parent)");
  {
    // The 1 GiB parent is itself a child, so the bench never holds the gigabyte.
    series s;
    s.name = "fork + wait (1 GiB touched in the parent)";
    s.unit = "s";
    const int n = cfg.warmup + cfg.repeat;
    const int per = cfg.quick ? 4 : 10;
    auto out = run_in_child(
        [&](int) {
          unsigned char* mem = map_touched(big);
          std::vector<double> v;
          for (int i = 0; i < n; ++i) v.push_back(fork_wait(per));
          unmap(mem, big);
          return pack_doubles(v);
        },
        120);
    if (out.ok()) {
      file_samples(s, unpack_doubles(out.output), cfg.warmup);
    } else {
      s.state = series_state::failed;
      s.note = "the 1 GiB parent did not finish";
    }
    r.data.push_back(std::move(s));
  }

  const auto program = true_program();
  if (program.empty()) {
    r.data.push_back(
        absent("posix_spawn (vfork) + exec true + wait", series_state::skipped, "no true program"));
    r.data.push_back(absent("fork + exec true + wait", series_state::skipped, "no true program"));
  } else {
    prog.step("posix_spawn + exec");
    r.data.push_back(measure(cfg, "posix_spawn (vfork) + exec true + wait", "s",
                             [&] { return spawn_wait(execs, program); }));
    prog.step("fork + exec");
    r.data.push_back(measure(cfg, "fork + exec true + wait", "s",
                             [&] { return fork_exec_wait(execs, program); }));
  }
  prog.step("crew thread_pool start-up");
  r.data.push_back(pools::thread_pool_startup(cfg));
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    prog.step(std::string("crew process_pool start-up (") + method + ")");
    r.data.push_back(pools::process_pool_startup(cfg, method));
  }

  r.method = "Each sample times " + std::to_string(threads) + " thread create+join pairs, " +
             std::to_string(forks) + " fork+wait pairs (the child _exits at once), or " +
             std::to_string(execs) +
             " spawns of `true`, and divides. The 1 GiB case forks from a child that first "
             "wrote every page of a 1 GiB private mapping, so fork must copy its page tables. "
             "crew's pools: a sample is constructing a pool of 2 workers until the first "
             "trivial task's result is back (the thread_pool's taken by a worker; a "
             "process_pool with each start method: fork, spawn = fork + exec of this binary, "
             "forkserver = forked by a helper crew::init started), not counting its destruction; "
             "each pool is built in a child of the bench.";
  r.chart = {chart_kind::bars, "", "time per creation (log scale)", "", false, true, true};

  const double fork_vs_thread = median_ratio(find_series(r, "fork + wait (small parent)"),
                                             find_series(r, "thread create + join"));
  const double big_vs_small =
      median_ratio(find_series(r, "fork + wait (1 GiB touched in the parent)"),
                   find_series(r, "fork + wait (small parent)"));
  r.derived.columns = {"comparison", "ratio of medians"};
  r.derived.rows.push_back({"fork / thread", format_value(fork_vs_thread, "x")});
  r.derived.rows.push_back({"fork with 1 GiB / fork small", format_value(big_vs_small, "x")});
  const series* crew_thr = find_series(r, "crew thread_pool start-up to first result (2 workers)");
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    const std::string name =
        std::string("crew process_pool start-up to first result (") + method + ", 2 workers)";
    r.derived.rows.push_back({std::string("crew process_pool (") + method + ") / crew thread_pool",
                              format_value(median_ratio(find_series(r, name), crew_thr), "x")});
  }
  r.measured = "fork costs " + format_value(fork_vs_thread, "x") +
               " a thread; with 1 GiB touched " + format_value(big_vs_small, "x") + " a small fork";
  const bool a = fork_vs_thread >= 3, b = big_vs_small >= 2;
  if (std::isnan(fork_vs_thread) || std::isnan(big_vs_small)) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "a measurement failed";
  } else {
    r.verdict = a && b     ? verdict_kind::confirmed
                : (a || b) ? verdict_kind::mixed
                           : verdict_kind::refuted;
    r.verdict_text = std::string(a ? "a thread starts much faster than a process"
                                   : "a process started about as fast as a thread") +
                     "; " +
                     (b ? "fork slows down as the parent's memory grows"
                        : "the parent's memory barely changed fork's cost");
  }
  return r;
}

}  // namespace

experiment creation_experiment() {
  return {"creation", "Creation",
          "Starting a thread costs a fraction of starting a process, and fork gets slower as the "
          "parent's memory grows.",
          run};
}

}  // namespace crew::lab
