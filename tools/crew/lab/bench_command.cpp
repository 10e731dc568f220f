#include "lab/bench_command.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "lab/experiment.hpp"
#include "lab/machine.hpp"
#include "lab/report.hpp"

namespace crew::lab {
namespace {

// On a terminal: one line rewritten in place. Otherwise: plain lines, one per experiment start
// and end, so a log stays readable.
class stderr_progress final : public progress {
 public:
  stderr_progress(std::ostream& err, bool tty) : err_(err), tty_(tty) {}
  void begin(std::size_t index, std::size_t total, const std::string& id) {
    prefix_ = "[" + std::to_string(index) + "/" + std::to_string(total) + "] " + id;
    if (tty_) {
      err_ << "\r\033[K" << prefix_ << std::flush;
    } else {
      err_ << prefix_ << ": running\n" << std::flush;
    }
  }
  void step(std::string_view what) override {
    if (tty_) err_ << "\r\033[K" << prefix_ << ": " << what << std::flush;
  }
  void end(double seconds) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f s", seconds);
    if (tty_) {
      err_ << "\r\033[K" << prefix_ << ": done in " << b << '\n' << std::flush;
    } else {
      err_ << prefix_ << ": done in " << b << '\n' << std::flush;
    }
  }

 private:
  std::ostream& err_;
  bool tty_;
  std::string prefix_;
};

std::string known_ids() {
  std::string s;
  for (const auto& e : registry()) s += (s.empty() ? "" : ", ") + e.id;
  return s;
}

// Opens the output file before the run so a bad path fails in a second, not after minutes.
std::unique_ptr<std::ofstream> open_output(const std::string& path, std::ostream& err) {
  auto f = std::make_unique<std::ofstream>(path, std::ios::out | std::ios::trunc);
  if (!*f) {
    err << "crew bench: cannot write '" << path << "'\n";
    return nullptr;
  }
  return f;
}

}  // namespace

int run_bench(const bench_options& opts, std::ostream& std_out, std::ostream& err) {
  std::vector<const experiment*> chosen;
  if (opts.only.empty()) {
    for (const auto& e : registry()) chosen.push_back(&e);
  } else {
    for (const auto& id : opts.only) {
      const experiment* e = find_experiment(id);
      if (e == nullptr) {
        err << "crew bench: unknown experiment '" << id << "' (known: " << known_ids() << ")\n";
        return 2;
      }
      chosen.push_back(e);
    }
  }
  if (opts.repeat && (*opts.repeat < 1 || *opts.repeat > 1000)) {
    err << "crew bench: --repeat must be between 1 and 1000 (got " << *opts.repeat << ")\n";
    return 2;
  }
  for (unsigned w : opts.workers)
    if (w == 0 || w > 1024) {
      err << "crew bench: --workers values must be between 1 and 1024 (got " << w << ")\n";
      return 2;
    }
  if (opts.json_path == "-" && opts.html_path == "-") {
    err << "crew bench: --json - and --html - cannot both write to standard output\n";
    return 2;
  }
  config cfg;
  cfg.quick = opts.quick;
  cfg.cores = usable_cores();
  cfg.repeat = opts.repeat ? *opts.repeat : (opts.quick ? 5 : 11);
  cfg.warmup = opts.quick ? 1 : 2;
  cfg.workers = opts.workers.empty() ? default_workers(cfg.cores) : opts.workers;

  // A report written to standard output ("-") keeps stdout for itself: the tables go to `err`.
  const bool report_on_stdout = opts.json_path == "-" || opts.html_path == "-";
  std::ostream& out = report_on_stdout ? err : std_out;
  std::unique_ptr<std::ofstream> json_file, html_file;
  if (!opts.json_path.empty() && opts.json_path != "-" &&
      !(json_file = open_output(opts.json_path, err)))
    return 1;
  if (!opts.html_path.empty() && opts.html_path != "-" &&
      !(html_file = open_output(opts.html_path, err)))
    return 1;

  const machine_info machine = describe_machine();
  out << "crew bench " << machine.crew_version << " on " << machine.cpu_model << ", "
      << machine.cores << " cores (" << describe_layout(machine) << "), "
      << format_value(static_cast<double>(machine.memory_bytes), "B") << ", " << machine.kernel
      << (cfg.quick ? " (quick)" : "") << '\n';
  if (machine.cgroup_cpu_quota > 0 && machine.cgroup_cpu_quota < machine.cores)
    out << "Note: the cgroup allows " << machine.cgroup_cpu_quota << " CPUs' worth of time ("
        << machine.cgroup_cpu_source << ") on " << machine.cores
        << " cores: past that many busy workers, scaling figures flatten\n";
  if (machine.load_average > 0.5 * machine.cores)
    out << "Note: load average " << machine.load_average << " on " << machine.cores
        << " cores: other programs compete for the CPUs, so scaling figures will read low\n";
  out.flush();
  stderr_progress prog(err, ::isatty(STDERR_FILENO) == 1);
  std::vector<result> results;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    const experiment& e = *chosen[i];
    prog.begin(i + 1, chosen.size(), e.id);
    const auto t0 = clock::now();
    result r;
    try {
      r = e.run(cfg, prog);
    } catch (const std::exception& ex) {
      r = result{};
      r.verdict = verdict_kind::not_measured;
      r.verdict_text = std::string("the experiment failed: ") + ex.what();
      r.measured = "n/a";
    }
    r.id = e.id;
    r.title = e.title;
    r.claim = e.claim;
    r.seconds = seconds_since(t0);
    prog.end(r.seconds);
    print_result(out, r);
    out.flush();
    results.push_back(std::move(r));
  }
  print_summary(out, results);

  int code = 0;
  const auto write_report = [&](const std::string& path, std::ofstream* file,
                                const std::string& text) {
    if (path.empty()) return;
    std::ostream& to = file != nullptr ? *file : std_out;
    to << text;
    to.flush();
    if (file != nullptr) file->close();
    if (!to || (file != nullptr && !*file)) {
      err << "crew bench: writing '" << path << "' failed\n";
      code = 1;
    }
  };
  if (!opts.json_path.empty())
    write_report(opts.json_path, json_file.get(), to_json(machine, cfg, results).dump(2) + "\n");
  if (!opts.html_path.empty())
    write_report(opts.html_path, html_file.get(), render_html(machine, cfg, results));
  return code;
}

}  // namespace crew::lab
