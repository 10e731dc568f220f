#include "advise/advise_command.hpp"

#include <fstream>

#include "advise/costs.hpp"
#include "advise/profile.hpp"
#include "advise/rules.hpp"
#include "lab/experiment.hpp"
#include "lab/machine.hpp"
#include "lab/report.hpp"

namespace crew::lab {

int run_advise(const advise_options& opts, std::ostream& std_out, std::ostream& err) {
  if (opts.command.empty()) {
    err << "crew advise: give the command to measure after --, e.g. crew advise -- ./job input\n";
    return 2;
  }
  if (opts.runs == 0 || opts.runs > 100) {
    err << "crew advise: --runs must be between 1 and 100\n";
    return 2;
  }
  if (!(opts.budget_seconds > 0) || opts.budget_seconds > 24 * 3600) {
    err << "crew advise: --budget must be between 0 and 86400 seconds\n";
    return 2;
  }
  // "--json -": the JSON alone goes to standard output, the human-readable advice to `err`.
  const bool json_on_stdout = opts.json_path == "-";
  std::ostream& out = json_on_stdout ? err : std_out;
  std::ofstream json_out;
  if (!opts.json_path.empty() && !json_on_stdout) {
    json_out.open(opts.json_path, std::ios::out | std::ios::trunc);
    if (!json_out) {
      err << "crew advise: cannot write '" << opts.json_path << "'\n";
      return 1;
    }
  }
  if (!opts.stdin_path.empty() && !std::ifstream(opts.stdin_path)) {
    err << "crew advise: cannot read '" << opts.stdin_path << "' (--stdin)\n";
    return 1;
  }
  machine_costs costs;
  double calibration_seconds = 0;  // 0: costs from --bench
  try {
    if (!opts.bench_json.empty()) {
      std::ifstream in(opts.bench_json);
      if (!in) {
        err << "crew advise: cannot read '" << opts.bench_json << "'\n";
        return 1;
      }
      nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_discarded()) {
        err << "crew advise: '" << opts.bench_json << "' is not valid JSON\n";
        return 1;
      }
      costs = costs_from_bench(j, opts.bench_json);
    }
    err << "crew advise: running '" << opts.command.front() << "' up to " << opts.runs
        << " times (budget " << format_value(opts.budget_seconds, "s") << ")\n";
    std::vector<command_run> raw;
    workload_profile profile =
        profile_command(opts.command, opts.runs, opts.budget_seconds, &raw, opts.stdin_path);
    const command_inputs inputs = named_inputs(opts.command, opts.stdin_path);
    const io_profile io = summarize_io(raw);
    profile.tasks = opts.tasks;
    if (profile.timeouts > 0 && profile.runs == profile.timeouts) {
      err << "crew advise: '" << opts.command.front() << "' did not finish within the "
          << format_value(opts.budget_seconds, "s")
          << " budget; raise --budget or give it a smaller input\n";
      return 4;
    }
    if (profile.crashes == profile.runs) {
      err << "crew advise: '" << opts.command.front() << "' crashed on every run ("
          << profile.crash_detail
          << "); fix the crash first, or run it under a process pool so it cannot take the others "
             "down\n";
      return 3;
    }
    if (opts.bench_json.empty()) {
      err << "crew advise: calibrating this machine (use --bench FILE from `crew bench --json` to "
             "skip)\n";
      const auto t0 = clock::now();
      costs = calibrate_costs();
      calibration_seconds = seconds_since(t0);
      err << "crew advise: calibrated in " << format_value(calibration_seconds, "s") << "\n";
    }
    const recommendation rec = recommend(profile, costs);

    out << "Workload: " << profile.description << "\n";
    table t;
    t.columns = {"measure", "value"};
    t.rows = {
        {"runs", std::to_string(profile.runs)},
        {"wall time per task (median)", format_value(profile.wall_seconds, "s")},
        {"CPU time per task (user+sys)", format_value(profile.cpu_seconds, "s")},
        {"CPU / wall", format_value(profile.cpu_fraction(), "%")},
        {"peak memory (max RSS)", format_value(profile.peak_rss_bytes, "B")},
        {"input: files named on its command line",
         format_value(inputs.file_bytes, "B") + " (" + std::to_string(inputs.files.size()) +
             " file" + (inputs.files.size() == 1 ? "" : "s") + ")"},
        {"input: standard input",
         format_value(inputs.stdin_bytes, "B") + " (" + opts.stdin_path + ")"},
        {"read as it ran (rchar)", io.known ? format_value(io.read_chars, "B") : "n/a"},
        {"written as it ran (wchar)", io.known ? format_value(io.write_chars, "B") : "n/a"},
        {"from / to storage",
         io.known ? format_value(io.storage_read, "B") + " / " + format_value(io.storage_write, "B")
                  : "n/a"},
        {"blocked on block I/O", io.io_wait_seconds >= 0
                                     ? format_value(io.io_wait_seconds, "s")
                                     : "not kept by this kernel (sysctl kernel.task_delayacct=1)"},
        {"waiting, not computing (wall − CPU)", format_value(io.waiting_seconds, "s")},
        {"result size (stdout)", format_value(profile.result_bytes, "B")},
        {"crashes", std::to_string(profile.crashes) +
                        (profile.crash_detail.empty() ? "" : " (" + profile.crash_detail + ")")}};
    print_aligned(out, t);
    out << "\nThis machine (" << costs.source << "):\n";
    table c;
    c.columns = {"cost", "value"};
    c.rows = {{"cores", std::to_string(costs.cores)},
              {"thread start", format_value(costs.thread_start_seconds, "s")},
              {"process start (fork)", format_value(costs.process_start_seconds, "s")},
              {"thread hand-off (round trip)", format_value(costs.thread_handoff_seconds, "s")},
              {"process hand-off (round trip)", format_value(costs.process_handoff_seconds, "s")},
              {"copy to a process", format_value(costs.copy_bandwidth, "B/s")},
              {"idle thread / idle process", format_value(costs.idle_thread_bytes, "B") + " / " +
                                                 format_value(costs.idle_process_bytes, "B")}};
    print_aligned(out, c);
    if (!costs.assumed.empty()) {
      out << "  (defaults, not measured here:";
      for (const auto& a : costs.assumed) out << ' ' << a << ';';
      out << ")\n";
    }
    out << "\nRecommendation: " << to_string(rec.model);
    if (rec.model == execution_model::hybrid)
      out << " — " << rec.workers << " processes × " << rec.threads_per_worker << " threads";
    else
      out << " — " << rec.workers << (rec.model == execution_model::mpi ? " per node" : " workers");
    out << ", chunk " << rec.chunk << ", timeout " << format_value(rec.timeout_seconds, "s")
        << "\n";
    for (const auto& r : rec.reasons) out << "  because " << r << "\n";
    const unsigned copies = copies_at_once(rec);
    out << "Run " << copies << " cop" << (copies == 1 ? "y" : "ies")
        << " of the command at once (e.g. xargs -P " << copies << " or parallel -j " << copies
        << ")\n";
    for (const auto& r : rec.caveats) out << "  note: " << r << "\n";
    out << "Predicted speed-up over running the tasks one after another: "
        << format_value(rec.predicted_speedup, "x");
    if (profile.tasks)
      out << " (" << *profile.tasks
          << " tasks: " << format_value(profile.wall_seconds * double(*profile.tasks), "s")
          << " → about "
          << format_value(profile.wall_seconds * double(*profile.tasks) / rec.predicted_speedup,
                          "s")
          << ")";
    out << "\n";
    if (json_out.is_open() || json_on_stdout) {
      nlohmann::json j = {
          {"schema", "crew-advise/1"},
          {"profile", to_json(profile)},
          {"machine_costs", to_json(costs)},
          {"recommendation", to_json(rec)},
          {"copies_at_once", copies},
          {"calibration_seconds",
           calibration_seconds > 0 ? nlohmann::json(calibration_seconds) : nlohmann::json(nullptr)},
          {"inputs",
           {{"files", inputs.files},
            {"file_bytes", inputs.file_bytes},
            {"stdin", opts.stdin_path},
            {"stdin_bytes", inputs.stdin_bytes}}},
          {"io",
           {{"known", io.known},
            {"read_chars", io.read_chars},
            {"write_chars", io.write_chars},
            {"storage_read_bytes", io.storage_read},
            {"storage_write_bytes", io.storage_write},
            {"io_wait_seconds", io.io_wait_seconds >= 0 ? nlohmann::json(io.io_wait_seconds)
                                                        : nlohmann::json(nullptr)},
            {"waiting_seconds", io.waiting_seconds}}}};
      auto runs = nlohmann::json::array();
      for (const auto& r : raw)
        runs.push_back({{"wall_seconds", r.wall_seconds},
                        {"cpu_seconds", r.cpu_seconds},
                        {"max_rss_bytes", r.max_rss_bytes},
                        {"stdout_bytes", r.stdout_bytes},
                        {"exit_code", r.exit_code},
                        {"signal", r.signal},
                        {"timed_out", r.timed_out},
                        {"read_chars", r.io.read_chars},
                        {"write_chars", r.io.write_chars},
                        {"storage_read_bytes", r.io.read_bytes},
                        {"storage_write_bytes", r.io.write_bytes}});
      j["runs"] = std::move(runs);
      std::ostream& to = json_on_stdout ? std_out : json_out;
      to << j.dump(2) << '\n';
      to.flush();
      if (!json_on_stdout) json_out.close();
      if (!to || (!json_on_stdout && !json_out)) {
        err << "crew advise: writing '" << opts.json_path << "' failed\n";
        return 1;
      }
    }
  } catch (const advise_error& e) {
    err << "crew advise: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace crew::lab
