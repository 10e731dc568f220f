#include "advise/profile.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "lab/experiment.hpp"
#include "lab/stats.hpp"

namespace crew::lab {
namespace {

std::string describe_signal(int sig) {
  const char* d = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (d ? std::string(" (") + d + ")" : "");
}

}  // namespace

command_run run_command(const std::vector<std::string>& argv, double timeout_seconds,
                        const std::string& stdin_path) {
  if (argv.empty()) throw advise_error("no command given");
  crew::child_options o;
  o.timeout = std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  o.kill_grace = std::chrono::seconds(2);
  o.own_process_group = true;  // a timeout stops everything it started
  o.stdin_path = stdin_path;
  o.stdout_to_output = true;
  o.output_limit = 0;  // counted and discarded
  o.child_stderr = crew::child_options::stderr_mode::capture;
  o.stderr_tail_bytes = 400;
  crew::child_result c;
  try {
    c = crew::run_command(argv, o);
  } catch (const std::system_error& e) {
    throw advise_error(e.what());
  }
  command_run r;
  r.wall_seconds = c.wall_seconds;
  r.cpu_seconds = c.cpu_seconds;
  r.max_rss_bytes = static_cast<double>(c.peak_resident_bytes);
  r.stdout_bytes = static_cast<double>(c.output_bytes);
  if (c.exited) r.exit_code = c.exit_code;
  r.signal = c.signal;
  r.timed_out = c.timed_out;
  r.stderr_tail = std::move(c.stderr_tail);
  r.io = c.io;
  r.io_wait_seconds = c.io_wait_seconds;
  return r;
}

command_inputs named_inputs(const std::vector<std::string>& argv, const std::string& stdin_path) {
  namespace fs = std::filesystem;
  command_inputs in;
  std::set<fs::path> seen;
  const auto add = [&](const std::string& path) {
    std::error_code ec;
    if (path.empty() || !fs::is_regular_file(path, ec)) return;
    const fs::path canonical = fs::weakly_canonical(path, ec);
    if (ec || !seen.insert(canonical).second) return;
    const auto size = fs::file_size(path, ec);
    if (ec) return;
    in.files.push_back(path);
    in.file_bytes += static_cast<double>(size);
  };
  // argv[0] is the program, not its data.
  for (std::size_t i = 1; i < argv.size(); ++i) {
    add(argv[i]);
    const auto eq = argv[i].find('=');
    if (argv[i].rfind("-", 0) == 0 && eq != std::string::npos) add(argv[i].substr(eq + 1));
  }
  std::error_code ec;
  if (!stdin_path.empty() && fs::is_regular_file(stdin_path, ec)) {
    const auto size = fs::file_size(stdin_path, ec);
    if (!ec) in.stdin_bytes = static_cast<double>(size);
  }
  return in;
}

io_profile summarize_io(const std::vector<command_run>& runs) {
  io_profile p;
  std::vector<double> rc, wc, rb, wb, wait, waiting;
  for (const auto& r : runs) {
    if (r.timed_out || r.signal != 0) continue;
    waiting.push_back(std::max(0.0, r.wall_seconds - r.cpu_seconds));
    if (r.io_wait_seconds >= 0) wait.push_back(r.io_wait_seconds);
    if (!r.io.known) continue;
    p.known = true;
    rc.push_back(static_cast<double>(r.io.read_chars));
    wc.push_back(static_cast<double>(r.io.write_chars));
    rb.push_back(static_cast<double>(r.io.read_bytes));
    wb.push_back(static_cast<double>(r.io.write_bytes));
  }
  if (p.known) {
    p.read_chars = median(rc);
    p.write_chars = median(wc);
    p.storage_read = median(rb);
    p.storage_write = median(wb);
  }
  if (!wait.empty()) p.io_wait_seconds = median(wait);
  if (!waiting.empty()) p.waiting_seconds = median(waiting);
  return p;
}

unsigned copies_at_once(const recommendation& r) {
  unsigned n = r.workers;
  if (r.model == execution_model::hybrid) n *= std::max(1u, r.threads_per_worker);
  return std::max(1u, n);
}

workload_profile profile_command(const std::vector<std::string>& argv, unsigned runs,
                                 double budget_seconds, std::vector<command_run>* raw,
                                 const std::string& stdin_path) {
  workload_profile p;
  for (const auto& a : argv) p.description += (p.description.empty() ? "" : " ") + a;
  // What one copy of the command is given to work on: its named files and its stdin (the
  // command line itself is a few bytes, not its data).
  p.arg_bytes = named_inputs(argv, stdin_path).total();
  std::vector<double> wall, cpu, out;
  const auto t0 = clock::now();
  for (unsigned i = 0; i < std::max(1u, runs); ++i) {
    const double left = budget_seconds - seconds_since(t0);
    // Stop early rather than overrun: another run as long as the slowest would not fit.
    if (i > 0 && (left <= 0 || p.max_wall_seconds > left)) break;
    const command_run r = run_command(argv, std::max(0.1, left), stdin_path);
    if (raw) raw->push_back(r);
    ++p.runs;
    p.max_wall_seconds = std::max(p.max_wall_seconds, r.wall_seconds);
    p.peak_rss_bytes = std::max(p.peak_rss_bytes, r.max_rss_bytes);
    if (r.timed_out) {
      ++p.timeouts;
      ++p.crashes;
      p.crash_detail = "killed after the " + format_value(budget_seconds, "s") + " budget";
      break;
    }
    if (r.signal != 0) {
      ++p.crashes;
      p.crash_detail = describe_signal(r.signal);
      continue;
    }
    wall.push_back(r.wall_seconds);
    cpu.push_back(r.cpu_seconds);
    out.push_back(r.stdout_bytes);
  }
  p.wall_seconds = median(wall);
  p.cpu_seconds = median(cpu);
  p.result_bytes = median(out);
  if (wall.empty()) p.wall_seconds = p.max_wall_seconds;
  return p;
}

}  // namespace crew::lab
