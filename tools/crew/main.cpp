// crew — the command-line tool: measures the threads-vs-processes trade-offs on this machine
// (`crew bench`) and turns them into advice for a workload (`crew advise`).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>

#include "advise/advise_command.hpp"
#include "crew/process_pool.hpp"
#include "crew/version.hpp"
#include "lab/bench_command.hpp"

int main(int argc, char** argv) {
  // First: `crew bench` starts process pools with the spawn and forkserver methods, whose
  // workers re-enter this binary here and never return from it.
  crew::init(argc, argv);
  CLI::App app{"crew: one API over threads, processes and machines, and the numbers to choose"};
  app.set_version_flag("--version", std::string{"crew "} + crew::version());
  app.require_subcommand(0, 1);

  crew::lab::bench_options bench;
  auto* bench_cmd =
      app.add_subcommand("bench", "Measure threads against processes on this machine");
  bench_cmd->add_flag("--quick", bench.quick,
                      "Fewer sizes and repeats: the whole run within about a minute");
  bench_cmd
      ->add_option("--only", bench.only,
                   "Run only these experiments (creation switching communication memory cpu io "
                   "data fault peers)")
      ->delimiter(',');
  bench_cmd
      ->add_option("--workers", bench.workers,
                   "Worker counts for the CPU scaling experiment (default 1..2x cores)")
      ->delimiter(',');
  bench_cmd->add_option("--repeat", bench.repeat,
                        "Measured runs per figure (default 5 with --quick, else 11)");
  bench_cmd->add_option("--json", bench.json_path,
                        "Write every raw sample and the machine to this JSON file (- for stdout)");
  bench_cmd->add_option("--html", bench.html_path,
                        "Write a self-contained HTML report to this file (- for stdout)");

  crew::lab::advise_options advise;
  auto* advise_cmd = app.add_subcommand(
      "advise", "Measure a command and recommend threads, processes, hybrid or MPI");
  advise_cmd->add_option("--runs", advise.runs, "How many times to run the command (default 3)");
  advise_cmd->add_option("--budget", advise.budget_seconds,
                         "Time budget in seconds for all runs (default 60)");
  advise_cmd->add_option("--bench", advise.bench_json,
                         "Machine costs from a `crew bench --json` file instead of a calibration");
  advise_cmd->add_option("--tasks", advise.tasks,
                         "How many such tasks you will run (sharpens chunk size and prediction)");
  advise_cmd->add_option("--json", advise.json_path,
                         "Write the profile, costs and advice as JSON (- for stdout)");
  advise_cmd->add_option("--stdin", advise.stdin_path,
                         "A file to give the command as its standard input (default /dev/null)");
  // Not ->required(): run_advise says how to give the command, in one line with exit code 2.
  advise_cmd->add_option("command", advise.command, "The command to measure, after --");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every parse error exits 2, as docs/bench.md and
    // docs/advise.md document (CLI11's own codes run from 100 up).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (bench_cmd->parsed()) return crew::lab::run_bench(bench, std::cout, std::cerr);
    if (advise_cmd->parsed()) return crew::lab::run_advise(advise, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "crew: " << e.what() << '\n';
    return 1;
  }
  std::fputs(app.help().c_str(), stdout);
  return 0;
}
