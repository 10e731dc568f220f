// Experiment 7 — data sharing: tasks that read a large shared input.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <new>

#include "experiments/common.hpp"
#include "experiments/kernels.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

namespace crew::lab {
namespace {

struct alignas(64) counter {
  std::atomic<unsigned> next{0};
  std::atomic<std::uint64_t> sink{0};
};

// Threads, or processes forked after the input exists (they inherit it copy-on-write): every
// task reads the input in place.
double in_place(bool processes, unsigned w, unsigned tasks, const unsigned char* data,
                std::size_t bytes) {
  auto* q = new (map_shared(sizeof(counter))) counter{};
  const double t = timed_team(processes, w, [&](unsigned, const std::function<void()>& go) {
    go();
    while (q->next.fetch_add(1, std::memory_order_relaxed) < tasks)
      q->sink.fetch_add(read_all_bytes(data, bytes), std::memory_order_relaxed);
  });
  unmap(q, sizeof(counter));
  return t;
}

// Processes started before the input exists, as a pool's workers are; each task's input is
// sent to its worker through a pipe (the copy a process pool makes of an argument) and the
// worker answers with an 8-byte checksum. One dispatcher feeds the workers round-robin.
double copied(unsigned w, unsigned tasks, const unsigned char* data, std::size_t bytes) {
  struct link {
    pid_t pid;
    int to, from;
  };
  std::vector<link> links;
  for (unsigned i = 0; i < w; ++i) {
    int down[2], up[2];
    if (::pipe(down) != 0) break;
    if (::pipe(up) != 0) {
      ::close(down[0]);
      ::close(down[1]);
      break;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(down[1]);
      ::close(up[0]);
      for (auto& l : links) {
        ::close(l.to);
        ::close(l.from);
      }
      std::vector<unsigned char> buf(bytes);
      while (read_all(down[0], buf.data(), bytes)) {
        const std::uint64_t sum = read_all_bytes(buf.data(), bytes);
        if (!write_all(up[1], &sum, sizeof sum)) break;
      }
      ::_exit(0);
    }
    ::close(down[0]);
    ::close(up[1]);
    links.push_back({pid, down[1], up[0]});
  }
  bool ok = links.size() == w;
  const auto t0 = clock::now();
  for (unsigned done = 0; ok && done < tasks;) {
    const unsigned round = std::min<unsigned>(w, tasks - done);
    for (unsigned i = 0; i < round && ok; ++i) ok = write_all(links[i].to, data, bytes);
    for (unsigned i = 0; i < round && ok; ++i) {
      std::uint64_t sum;
      ok = read_all(links[i].from, &sum, sizeof sum);
    }
    done += round;
  }
  const double t = seconds_since(t0);
  for (auto& l : links) {
    ::close(l.to);
    ::close(l.from);
    wait_for(l.pid);
  }
  return ok ? t : std::nan("");
}

result run(const config& cfg, progress& prog) {
  result r;
  const std::size_t bytes = cfg.quick ? (std::size_t{64} << 20) : (std::size_t{256} << 20);
  const unsigned w = std::max(2u, cfg.cores);
  const unsigned tasks = 2 * w;
  const std::string sz = format_value(static_cast<double>(bytes), "B");
  unsigned char* data = map_touched(bytes);

  prog.step("threads reading " + sz + " in place");
  r.data.push_back(measure(cfg, "threads, read in place", "s",
                           [&] { return in_place(false, w, tasks, data, bytes); }));
  prog.step("processes receiving a copy");
  r.data.push_back(measure(cfg, "processes, each task sent a copy", "s",
                           [&] { return copied(w, tasks, data, bytes); }));
  prog.step("processes inheriting the input");
  r.data.push_back(measure(cfg, "processes forked after the input, copy-on-write", "s",
                           [&] { return in_place(true, w, tasks, data, bytes); }));
  prog.step("crew process_pool, input as a task argument");
  r.data.push_back(pools::process_pool_copy(cfg, w, tasks, data, bytes));
  prog.step("crew process_pool, input as a crew::shared_array");
  r.data.push_back(pools::process_pool_shared_buffer(cfg, w, tasks, data, bytes));
  unmap(data, bytes);
  prog.step("crew process_pool, a 1 GiB crew::shared_buffer handed to a task");
  auto handover = pools::process_pool_handover(cfg, std::size_t{1} << 30);
  r.data.push_back(handover.no_op);
  r.data.push_back(handover.handover);
  for (auto& s : r.data)
    for (double v : s.samples)
      if (std::isnan(v)) {
        s.state = series_state::failed;
        s.note = "a worker failed";
      }

  r.method = std::to_string(tasks) + " tasks on " + std::to_string(w) +
             " workers, each task "
             "reading every cache line of a " +
             sz +
             " input and returning a checksum. Threads "
             "read it in place; pool-style processes (started before the input existed) get it "
             "through a pipe per task; processes forked after it exists read their copy-on-write "
             "view; a crew::process_pool gets it as a std::vector<unsigned char> task argument "
             "(encoded at submit, sent through the pool's channel or a memfd, decoded in the "
             "worker), one task per worker at a time like the pipe case; and as a "
             "crew::shared_array<const unsigned char>, whose memfd the workers map (every task "
             "submitted at once: nothing is copied per task). A sample is the wall time for all "
             "tasks.";
  r.chart = {chart_kind::bars, "", "wall time for all tasks", "", false, false, true};
  const double copy_ratio = median_ratio(find_series(r, "processes, each task sent a copy"),
                                         find_series(r, "threads, read in place"));
  const double cow_ratio =
      median_ratio(find_series(r, "processes forked after the input, copy-on-write"),
                   find_series(r, "threads, read in place"));
  const double pool_ratio =
      median_ratio(find_series(r, "crew process_pool, input as a task argument"),
                   find_series(r, "threads, read in place"));
  const double shared_ratio =
      median_ratio(find_series(r, "crew process_pool, input as a crew::shared_array"),
                   find_series(r, "threads, read in place"));
  r.derived.columns = {"comparison", "time ratio"};
  r.derived.rows.push_back({"copy per task / threads", format_value(copy_ratio, "x")});
  r.derived.rows.push_back(
      {"crew process_pool task argument / threads", format_value(pool_ratio, "x")});
  r.derived.rows.push_back({"crew process_pool crew::shared_array / threads (target <= 2x)",
                            format_value(shared_ratio, "x")});
  r.derived.rows.push_back({"copy-on-write processes / threads", format_value(cow_ratio, "x")});
  const double handover_extra =
      handover.handover.has_data() && handover.no_op.has_data()
          ? handover.handover.stats().median - handover.no_op.stats().median
          : std::nan("");
  r.derived.rows.push_back(
      {"1 GiB crew::shared_buffer handover beyond a no-op round trip "
       "(target < 1 ms)",
       format_value(handover_extra, "s")});
  r.measured =
      "sending the input costs " + format_value(copy_ratio, "x") +
      " reading it in place (crew process_pool argument: " + format_value(pool_ratio, "x") +
      "; as a crew::shared_array: " + format_value(shared_ratio, "x") +
      "); inherited copy-on-write " + format_value(cow_ratio, "x");
  if (std::isnan(copy_ratio) || std::isnan(cow_ratio)) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "a measurement failed";
    return r;
  }
  const bool a = copy_ratio >= 2, b = cow_ratio < 1.5;
  r.verdict = a && b   ? verdict_kind::confirmed
              : a || b ? verdict_kind::mixed
                       : verdict_kind::refuted;
  r.verdict_text = std::string(a ? "copying the input to each task dominates"
                                 : "copying cost less than expected") +
                   "; " +
                   (b ? "memory shared without copying reads as fast as threads"
                      : "even shared pages were slower for processes");
  return r;
}

}  // namespace

experiment data_sharing_experiment() {
  return {
      "data", "Data sharing",
      "Tasks that read a large input pay for a copy per task in processes that receive it, "
      "and nothing extra when the memory is shared (threads, or pages shared between processes).",
      run};
}

}  // namespace crew::lab
