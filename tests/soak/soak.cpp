// crew-soak: a seeded random mix of faults and payloads on every executor, with every outcome
// checked and every leak looked for. docs/soak.md describes the run, its options and its model.
//
// For each executor the soak builds pools with random options one after another for the time it
// is given; each pool gets batches of tasks (most ordinary, the rest faults: signals, _Exit,
// hangs past the timeout, exceptions, memory past the limit, large arguments and results,
// cancels, child processes), and waits for each batch in one of three ways (as_completed,
// when_all, get/result in order). Every task has an expected outcome, known before it is
// submitted; a different outcome is a mismatch, reported with the seed, the task's index and
// what was injected. After each pool: descriptors, shared mappings, /dev/shm entries and
// processes must be back to what they were before it.
//
// Uses crew's public headers only, so that it keeps checking the pools whatever their insides.

// GCC 12 at -O2 reports a maybe-uninitialized read inside future<std::variant<...>>::result()
// (crew/detail/shared_state.hpp building an outcome of a variant) that does not exist; the
// warning's location is the header, so it is silenced for this file's includes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "crew/crew.hpp"
#include "procfs.hpp"
#include "tasks.hpp"
#ifdef CREW_SOAK_WITH_MPI
#include "crew/mpi_pool.hpp"
#endif

namespace soak {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using crew::error_kind;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int slowdown = 3;  // sanitizers make every task and every start-up slower
// ASan's shadow memory and its quarantine of freed blocks (256 MiB by default) make an ordinary
// worker that moved a few 3 MiB payloads resident far past 128 MiB.
constexpr std::size_t memory_factor = 4;
#else
constexpr int slowdown = 1;
constexpr std::size_t memory_factor = 1;
#endif

/// How much busier than its cores the machine is now (1 when it is not): time limits stretch by
/// it, since a task that must pass its memory limit before its time limit gets a share of a core
/// (the soak checks outcomes, not speed). Read when each pool is planned and printed with it.
int load_factor() {
  double load = 0;
  std::ifstream{"/proc/loadavg"} >> load;
  const double cores = std::max(1U, std::thread::hardware_concurrency());
  return std::max(1, static_cast<int>(std::ceil(load / cores)));
}

// --- options ------------------------------------------------------------------------------

struct options {
  std::uint64_t seed = 0;
  double seconds = 10;  // per executor
  std::vector<std::string> executors{"thread", "fork", "spawn", "forkserver", "hybrid"};
  bool keep_going = false;
  int stall_seconds = 120;
  int max_message_kib = 1024;  // exception messages up to this size, now and then
  bool verbose = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "crew-soak: " << problem << "\n"
            << "usage: crew-soak [--seed N] [--seconds S] [--executors a,b,...] [--keep-going]\n"
            << "                 [--stall-seconds S] [--max-message-kib K] [--verbose]\n"
            << "executors: thread, fork, spawn, forkserver, hybrid, mpi (mpi: alone, under "
               "mpirun)\n";
  std::exit(64);
}

options parse(int argc, char** argv) {
  options o;
  std::random_device entropy;
  o.seed = (std::uint64_t{entropy()} << 32 | entropy()) % 1'000'000'000'000ULL;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--seed") {
        o.seed = std::stoull(next());
      } else if (arg == "--seconds") {
        o.seconds = std::stod(next());
        if (o.seconds <= 0) usage("--seconds must be positive");
      } else if (arg == "--executors") {
        o.executors.clear();
        std::stringstream list{next()};
        std::string name;
        while (std::getline(list, name, ',')) {
          static const std::set<std::string> known{"thread",     "fork",   "spawn",
                                                   "forkserver", "hybrid", "mpi"};
          if (!known.contains(name)) usage("unknown executor '" + name + "'");
          o.executors.push_back(name);
        }
        if (o.executors.empty()) usage("--executors needs at least one name");
      } else if (arg == "--keep-going") {
        o.keep_going = true;
      } else if (arg == "--stall-seconds") {
        o.stall_seconds = std::stoi(next());
      } else if (arg == "--max-message-kib") {
        o.max_message_kib = std::stoi(next());
      } else if (arg == "--verbose") {
        o.verbose = true;
      } else {
        usage("unknown option " + arg);
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + arg);
    }
  }
  return o;
}

// --- what each executor can survive -----------------------------------------------------

enum class executor_kind { thread, process, hybrid, mpi };

struct executor_spec {
  std::string name;
  executor_kind kind;
  crew::start_method start = crew::start_method::fork;
  [[nodiscard]] bool isolates() const {
    return kind == executor_kind::process || kind == executor_kind::hybrid;
  }
};

/// The options one pool was built with (process pools), printed with every mismatch.
struct pool_setup {
  std::size_t workers = 2;
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds kill_grace{200};
  std::size_t memory_limit = 0;
  std::size_t max_tasks = 0;
  std::size_t pipeline = 0;
  std::size_t channel = std::size_t{1} << 20;
  [[nodiscard]] std::string describe() const {
    std::ostringstream out;
    out << "workers=" << workers << " task_timeout=" << timeout.count()
        << "ms kill_grace=" << kill_grace.count() << "ms memory_limit=" << (memory_limit >> 20)
        << "MiB max_tasks_per_worker=" << max_tasks << " pipeline_depth=" << pipeline
        << " channel_bytes=" << channel;
    return out.str();
  }
};

// --- the plan of one task -------------------------------------------------------------------

enum class fault {
  compute,
  nap,
  crash_raise_segv,
  crash_null_write,
  crash_abort,
  crash_kill_self,
  exit_code,
  hang,
  throw_exception,
  hog,
  big_argument,
  big_string_result,
  big_words_result,
  big_both,
  cancel_early,
  cancel_running,
  spawn_child,
};

const char* name_of(fault f) {
  switch (f) {
    case fault::compute:
      return "compute";
    case fault::nap:
      return "nap";
    case fault::crash_raise_segv:
      return "crash raise(SIGSEGV)";
    case fault::crash_null_write:
      return "crash null write (SIGSEGV)";
    case fault::crash_abort:
      return "crash abort() (SIGABRT)";
    case fault::crash_kill_self:
      return "crash kill(self, SIGKILL)";
    case fault::exit_code:
      return "_Exit(n)";
    case fault::hang:
      return "hang past task_timeout";
    case fault::throw_exception:
      return "exception";
    case fault::hog:
      return "memory past memory_limit";
    case fault::big_argument:
      return "large argument";
    case fault::big_string_result:
      return "large string result";
    case fault::big_words_result:
      return "large vector result";
    case fault::big_both:
      return "large argument and result";
    case fault::cancel_early:
      return "cancel right after submit";
    case fault::cancel_running:
      return "cancel while running";
    case fault::spawn_child:
      return "child process, then";
  }
  return "?";
}

const char* name_of_throw(int what) {
  static const char* const names[] = {"std::runtime_error",    "std::out_of_range",
                                      "std::invalid_argument", "std::logic_error",
                                      "soak::custom_error",    "int",
                                      "std::bad_alloc"};
  return names[what];
}

/// Faults that end their process (on their own; a hang ends it through the timeout).
bool kills_its_process(fault f) {
  switch (f) {
    case fault::crash_raise_segv:
    case fault::crash_null_write:
    case fault::crash_abort:
    case fault::crash_kill_self:
    case fault::exit_code:
    case fault::hog:
      return true;
    default:
      return false;
  }
}

struct plan {
  std::size_t index = 0;  // across the executor's run
  fault kind = fault::compute;
  std::uint64_t seed = 0;
  int a = 0;  // fault parameter: ms, exit code, exception type, spawn method...
  int b = 0;
  std::size_t size = 0;  // bytes or words
  std::string message;   // for exceptions
  // cancel bookkeeping
  bool cancel_called = false;
  bool cancel_returned = false;
  bool dropped_by_shutdown = false;  // still unresolved when shutdown(cancel_pending) ran

  [[nodiscard]] std::string describe() const {
    std::ostringstream out;
    out << name_of(kind);
    switch (kind) {
      case fault::nap:
        out << " " << a << " ms";
        break;
      case fault::exit_code:
        out << " code " << a;
        break;
      case fault::throw_exception:
        out << " " << name_of_throw(a) << " (message " << message.size() << " bytes)";
        break;
      case fault::hog:
        out << " " << size << " MiB";
        break;
      case fault::big_argument:
      case fault::big_both:
      case fault::big_words_result:
        out << " " << size << " words";
        break;
      case fault::big_string_result:
        out << " " << size << " bytes";
        break;
      case fault::cancel_early:
      case fault::cancel_running:
        out << " (nap " << a << " ms; cancel() "
            << (!cancel_called    ? "not called"
                : cancel_returned ? "returned true"
                                  : "returned false")
            << ")";
        break;
      case fault::spawn_child:
        out << " "
            << (a == exec_sleep         ? "fork+exec sleep"
                : a == shell_background ? "system(sleep &)"
                                        : "fork, child sleeps")
            << ", then "
            << (b == then_hang    ? "hang"
                : b == then_crash ? "SIGSEGV"
                                  : "return");
        break;
      default:
        break;
    }
    if (dropped_by_shutdown) out << " [pending at shutdown(cancel_pending)]";
    return out.str();
  }
};

/// What a future gave: a value or a task_error (and how it was read).
struct observed {
  std::optional<value> result;
  std::optional<crew::task_error> error;
  std::string how;   // "as_completed+result", "when_all+get", ...
  std::string note;  // anything odd seen while reading it
};

std::string describe(const observed& o) {
  std::ostringstream out;
  if (o.result) {
    out << "value (alternative " << o.result->index() << ")";
  } else if (o.error) {
    const auto& e = *o.error;
    std::string what = e.what();
    if (what.size() > 300) what = what.substr(0, 300) + "...";
    out << to_string(e.kind()) << " '" << what << "' (pid " << e.pid() << ", signal " << e.signal()
        << ", exit " << e.exit_code() << ", type '" << e.remote_type() << "', task '"
        << e.task_name() << "')";
  } else {
    out << "nothing";
  }
  if (!o.note.empty()) out << " [" << o.note << "]";
  out << " via " << o.how;
  return out.str();
}

// --- the run's shared state: counts, findings, the watchdog ------------------------------

struct counters {
  std::size_t tasks = 0;
  std::size_t pools = 0;
  std::map<std::string, std::size_t> outcomes;  // "value", "crashed signal 11", ...
  std::map<std::string, std::map<std::string, std::size_t>> by_fault;  // fault -> outcome -> n
  std::size_t victims = 0;           // hybrid: failed by a sibling's crash, modelled
  std::size_t dropped = 0;           // pending at shutdown(cancel_pending)
  std::size_t trees = 0;             // tasks that started a child process
  std::set<std::string> drop_kinds;  // how shutdown(cancel_pending) failed pending tasks
};

class reporter {
 public:
  explicit reporter(const options& o) : opts_(o) {}

  /// A mismatch: printed at once; ends the run unless --keep-going.
  void mismatch(const std::string& category, const std::string& text) {
    ++failures_[category];
    if (examples_[category].size() < 3) examples_[category].push_back(text);
    std::cerr << "MISMATCH [" << category << "] " << text << "\n";
    if (!opts_.keep_going) {
      std::cerr << "crew-soak: FAILED (seed " << opts_.seed << "); replay with --seed "
                << opts_.seed << "\n";
      std::fflush(nullptr);
      std::_Exit(1);
    }
  }
  /// Something worth the lead's attention that the model allows (e.g. a victim's message).
  void finding(const std::string& category, const std::string& text) {
    if (notes_[category]++ < 2) std::cerr << "NOTE [" << category << "] " << text << "\n";
  }

  [[nodiscard]] bool failed() const { return !failures_.empty(); }

  void summary() const {
    for (const auto& [category, count] : notes_) {
      std::cout << "  note: " << count << " x " << category << "\n";
    }
    for (const auto& [category, count] : failures_) {
      std::cout << "  MISMATCH: " << count << " x " << category << "\n";
      for (const auto& text : examples_.at(category)) std::cout << "      e.g. " << text << "\n";
    }
  }

 private:
  const options& opts_;
  std::map<std::string, std::size_t> failures_;
  std::map<std::string, std::vector<std::string>> examples_;
  std::map<std::string, std::size_t> notes_;
};

/// Ends the run when nothing resolves for too long: a future that never resolves is the worst
/// outcome the soak can find, and it must be reported rather than wait forever.
class watchdog {
 public:
  watchdog(int seconds, std::uint64_t seed) : limit_(std::chrono::seconds{seconds}), seed_(seed) {
    thread_ = std::thread([this] { watch(); });
  }
  ~watchdog() {
    {
      std::lock_guard lock{mutex_};
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void progress(std::string where) {
    std::lock_guard lock{mutex_};
    last_ = clock_type::now();
    where_ = std::move(where);
  }
  void unresolved(std::vector<std::string> tasks) {
    std::lock_guard lock{mutex_};
    unresolved_ = std::move(tasks);
  }

 private:
  void watch() {
    std::unique_lock lock{mutex_};
    while (!done_) {
      wake_.wait_for(lock, 1s);
      if (done_ || clock_type::now() - last_ < limit_) continue;
      std::cerr << "MISMATCH [stall] nothing resolved for " << limit_.count() << " s while "
                << where_ << "; unresolved:\n";
      std::size_t shown = 0;
      for (const auto& t : unresolved_) {
        if (shown++ == 20) break;
        std::cerr << "    " << t << "\n";
      }
      std::cerr << "crew-soak: FAILED (seed " << seed_ << "); replay with --seed " << seed_ << "\n";
      std::fflush(nullptr);
      std::_Exit(2);
    }
  }

  std::chrono::seconds limit_;
  std::uint64_t seed_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  clock_type::time_point last_ = clock_type::now();
  std::string where_ = "starting";
  std::vector<std::string> unresolved_;
  std::thread thread_;
};

// --- leak checks ----------------------------------------------------------------------------

struct resources {
  std::vector<std::string> fds;
  std::vector<std::string> maps;
  std::set<std::string> shm;
  std::set<pid_t> descendants;
  std::set<pid_t> peers;

  static resources now() {
    resources r;
    r.fds = open_descriptors();
    r.maps = shared_mappings();
    r.shm = shm_entries();
    const auto all = all_processes();
    for (const auto& p : descendants_of_self(all)) r.descendants.insert(p.pid);
    for (const auto& p : group_peers(all)) r.peers.insert(p.pid);
    return r;
  }
};

template <class T>
std::vector<std::string> extra(const std::vector<T>& after, const std::vector<T>& before) {
  std::multiset<T> left(before.begin(), before.end());
  std::vector<std::string> out;
  for (const auto& x : after) {
    auto it = left.find(x);
    if (it != left.end()) {
      left.erase(it);
    } else {
      out.push_back(x);
    }
  }
  return out;
}

/// Compares with `before`; processes get `grace` to go (a pool's destructor has returned, so
/// they should be gone already; the grace only absorbs /proc lag on a loaded machine).
void check_leaks(reporter& report, const resources& before, const std::string& token,
                 const std::string& where, std::size_t trees_started) {
  const auto deadline = clock_type::now() + 5s * slowdown;
  std::vector<process_entry> children;
  std::vector<process_entry> peers;
  std::vector<process_entry> marked;
  for (;;) {
    const auto all = all_processes();
    children.clear();
    peers.clear();
    for (const auto& p : descendants_of_self(all)) {
      if (!before.descendants.contains(p.pid)) children.push_back(p);
    }
    marked = marked_processes(all, token);
    for (const auto& p : group_peers(all)) {
      const bool known = std::any_of(marked.begin(), marked.end(),
                                     [&](const process_entry& m) { return m.pid == p.pid; });
      // A zombie that init has yet to reap is not running (and not ours to reap): the soak's
      // own descendants, zombies included, are checked above.
      const bool orphan_zombie = p.state == 'Z' && p.ppid != getpid();
      if (!before.peers.contains(p.pid) && !before.descendants.contains(p.pid) && !known &&
          !orphan_zombie) {
        peers.push_back(p);
      }
    }
    if ((children.empty() && peers.empty() && marked.empty()) || clock_type::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  auto list = [](const std::vector<process_entry>& ps) {
    std::string out;
    for (const auto& p : ps) out += "\n      " + soak::describe(p);
    return out;
  };
  if (!children.empty()) {
    report.mismatch("leak: child processes", where + ": " + std::to_string(children.size()) +
                                                 " descendants of the soak left after the pool" +
                                                 list(children));
  }
  if (!peers.empty()) {
    report.mismatch("leak: processes in our process group",
                    where + ": " + std::to_string(peers.size()) + " left" + list(peers));
  }
  if (!marked.empty()) {
    report.mismatch("leak: a task's child process outlived the pool",
                    where + ": " + std::to_string(marked.size()) + " of the children started by " +
                        std::to_string(trees_started) + " tasks are still running" + list(marked));
    // They are the soak's own (marked with its token): end them so the next pool starts clean.
    for (const auto& p : marked) kill(p.pid, SIGKILL);
  }

  const resources after = resources::now();
  auto joined = [](const std::vector<std::string>& xs) {
    std::string out;
    for (const auto& x : xs) out += "\n      " + x;
    return out;
  };
  // A descriptor counts as new by its number: one inherited from our parent may show another
  // target later (ctest reopens its log), which is not ours to leak.
  auto numbers = [](const std::vector<std::string>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.substr(0, e.find(' ')));
    return out;
  };
  const std::vector<std::string> new_numbers = extra(numbers(after.fds), numbers(before.fds));
  std::vector<std::string> new_fds;
  for (const auto& e : after.fds) {
    if (std::find(new_numbers.begin(), new_numbers.end(), e.substr(0, e.find(' '))) !=
        new_numbers.end()) {
      new_fds.push_back(e);
    }
  }
  if (const auto& fds = new_fds; !fds.empty()) {
    report.mismatch("leak: descriptors", where + ": " + std::to_string(after.fds.size()) +
                                             " open, " + std::to_string(before.fds.size()) +
                                             " before; new:" + joined(fds));
  }
  if (const auto maps = extra(after.maps, before.maps); !maps.empty()) {
    report.mismatch("leak: shared mappings", where + ": new:" + joined(maps));
  }
  std::vector<std::string> shm;
  for (const auto& name : after.shm) {
    if (!before.shm.contains(name)) shm.push_back(name);
  }
  if (!shm.empty()) report.mismatch("leak: /dev/shm entries", where + ":" + joined(shm));
}

// --- submitting -----------------------------------------------------------------------------

template <class Pool>
crew::future<value> submit(Pool& pool, const plan& p, const std::string& token) {
  switch (p.kind) {
    case fault::compute:
      return pool.template submit<&compute>(p.seed);
    case fault::nap:
    case fault::cancel_early:
    case fault::cancel_running:
      return pool.template submit<&nap>(p.a, p.seed);
    case fault::crash_raise_segv:
      return pool.template submit<&crash>(static_cast<int>(raise_segv));
    case fault::crash_null_write:
      return pool.template submit<&crash>(static_cast<int>(null_write));
    case fault::crash_abort:
      return pool.template submit<&crash>(static_cast<int>(abort_call));
    case fault::crash_kill_self:
      return pool.template submit<&crash>(static_cast<int>(kill_self));
    case fault::exit_code:
      return pool.template submit<&quit>(p.a);
    case fault::hang:
      return pool.template submit<&hang>(p.a);
    case fault::throw_exception:
      return pool.template submit<&throw_it>(p.a, p.message);
    case fault::hog:
      return pool.template submit<&hog>(p.size, p.a);
    case fault::big_argument:
      return pool.template submit<&digest>(make_words(p.seed, p.size));
    case fault::big_string_result:
      return pool.template submit<&produce_string>(p.seed, p.size);
    case fault::big_words_result:
      return pool.template submit<&produce_words>(p.seed, p.size);
    case fault::big_both:
      return pool.template submit<&transform>(make_words(p.seed, p.size),
                                              static_cast<std::uint32_t>(p.seed));
    case fault::spawn_child:
      return pool.template submit<&spawn_then>(p.a, token, p.b, p.b == then_hang ? 60'000 : 5);
  }
  std::abort();
}

// --- expectations ---------------------------------------------------------------------------

/// The value a task that ran normally returns.
value expected_value(const plan& p) {
  switch (p.kind) {
    case fault::compute:
    case fault::nap:
    case fault::cancel_early:
    case fault::cancel_running:
      return mix(p.seed);
    case fault::big_argument:
      return checksum(make_words(p.seed, p.size));
    case fault::big_string_result:
      return make_string(p.seed, p.size);
    case fault::big_words_result:
      return make_words(p.seed, p.size);
    case fault::big_both: {
      auto words = make_words(p.seed, p.size);
      for (auto& w : words) w = (w ^ static_cast<std::uint32_t>(p.seed)) + 1;
      return words;
    }
    case fault::spawn_child:
      return mix(5);
    default:
      return std::uint64_t{0};
  }
}

struct verdict {
  bool ok = true;
  std::string expected;  // in words
  std::string category;  // for grouping mismatches: "<fault> -> <what came back>"
};

std::string kind_label(const observed& o) {
  if (o.result) return "value";
  if (!o.error) return "nothing";
  const auto& e = *o.error;
  std::string label{to_string(e.kind())};
  if (e.kind() == error_kind::crashed) {
    label += e.signal() != 0 ? " signal " + std::to_string(e.signal()) : " exit code";
  }
  return label;
}

bool task_named(const crew::task_error& e, const char* fn) {
  return e.task_name().find(fn) != std::string::npos;
}

/// Checks one task against its plan; victims of a sibling's crash are judged later.
verdict judge(const plan& p, const observed& o, const executor_spec& spec,
              const pool_setup& setup) {
  verdict v;
  auto want_value = [&](const char* what) {
    v.expected = what;
    v.ok = o.result.has_value() && *o.result == expected_value(p);
    if (!v.ok && o.result) v.expected += " (the value differs)";
  };
  auto want_error = [&](error_kind kind, const std::function<bool(const crew::task_error&)>& ok,
                        std::string what) {
    v.expected = std::move(what);
    v.ok = o.error && o.error->kind() == kind && ok(*o.error);
  };
  auto crashed_with = [&](int signal, const char* fn) {
    want_error(
        error_kind::crashed,
        [&](const crew::task_error& e) {
          return e.signal() == signal && e.exit_code() == -1 && e.pid() > 0 && task_named(e, fn) &&
                 std::string{e.what()}.find("signal " + std::to_string(signal)) !=
                     std::string::npos;
        },
        "crashed with signal " + std::to_string(signal) + ", a pid, task " + fn);
  };

  if (p.dropped_by_shutdown && o.error &&
      (o.error->kind() == error_kind::cancelled || o.error->kind() == error_kind::pool_closed)) {
    v.expected = "its outcome, or cancelled/pool_closed (pending at shutdown(cancel_pending))";
    return v;
  }
  if ((p.kind == fault::cancel_early || p.kind == fault::cancel_running) && p.cancel_returned) {
    want_error(
        error_kind::cancelled, [](const crew::task_error&) { return true; },
        "cancelled (cancel() returned true)");
  } else {
    switch (p.kind) {
      case fault::compute:
      case fault::nap:
      case fault::big_argument:
      case fault::big_string_result:
      case fault::big_words_result:
      case fault::big_both:
        want_value("its value");
        break;
      case fault::cancel_early:
      case fault::cancel_running:
        want_value("its value (cancel() returned false)");
        break;
      case fault::crash_raise_segv:
      case fault::crash_null_write:
        crashed_with(SIGSEGV, "soak::crash");
        break;
      case fault::crash_abort:
        crashed_with(SIGABRT, "soak::crash");
        break;
      case fault::crash_kill_self:
        crashed_with(SIGKILL, "soak::crash");
        break;
      case fault::exit_code:
        want_error(
            error_kind::crashed,
            [&](const crew::task_error& e) {
              return e.exit_code() == p.a && e.signal() == 0 && e.pid() > 0 &&
                     task_named(e, "soak::quit");
            },
            "crashed with exit code " + std::to_string(p.a));
        break;
      case fault::hang:
        want_error(
            error_kind::timed_out,
            [](const crew::task_error& e) { return e.pid() > 0 && task_named(e, "soak::hang"); },
            "timed_out");
        break;
      case fault::throw_exception: {
        const std::string type = name_of_throw(p.a);
        const bool std_message = p.a != an_int && p.a != bad_alloc;
        want_error(
            error_kind::exception,
            [&](const crew::task_error& e) {
              if (e.remote_type() != type) return false;
              if (std_message && e.what() != p.message) return false;
              if (spec.kind == executor_kind::thread) return e.original() != nullptr;
              // Rebuilt on this side (get() rethrew the task's own type), or named.
              return e.original() != nullptr || task_named(e, "soak::throw_it");
            },
            "exception of type " + type + (std_message ? " with its message" : ""));
        break;
      }
      case fault::hog:
        want_error(
            error_kind::out_of_memory,
            [&](const crew::task_error& e) {
              return e.peak_memory() > setup.memory_limit && e.pid() > 0;
            },
            "out_of_memory with peak_memory > " + std::to_string(setup.memory_limit));
        break;
      case fault::spawn_child:
        if (p.b == then_hang) {
          want_error(
              error_kind::timed_out, [](const crew::task_error& e) { return e.pid() > 0; },
              "timed_out");
        } else if (p.b == then_crash) {
          crashed_with(SIGSEGV, "soak::spawn_then");
        } else {
          want_value("its value");
        }
        break;
    }
  }
  if (!v.ok) v.category = std::string{name_of(p.kind)} + " -> " + kind_label(o);
  return v;
}

// --- choosing tasks and pools ---------------------------------------------------------------

class planner {
 public:
  planner(std::uint64_t seed, const executor_spec& spec, const options& opts)
      : rng_(seed), spec_(spec), opts_(opts) {}

  std::mt19937_64& rng() { return rng_; }
  int between(int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng_); }
  bool chance(double p) { return std::bernoulli_distribution{p}(rng_); }

  pool_setup pool() {
    pool_setup s;
    s.workers = spec_.kind == executor_kind::thread ? static_cast<std::size_t>(between(2, 4))
                                                    : static_cast<std::size_t>(between(2, 3));
    // Long enough for a memory blow-up to pass its limit first: on the 2-core reference machine
    // the kernel hands out fresh pages at about 1.5 ms per MiB, so touching 128 MiB takes
    // ~200 ms, ~600 ms with three workers doing it at once.
    s.timeout = std::chrono::milliseconds{between(1000, 2000) * slowdown * load_factor()};
    s.kill_grace = std::chrono::milliseconds{between(50, 200)};
    s.memory_limit =
        (std::size_t{static_cast<std::size_t>(between(64, 128))} << 20) * memory_factor;
    s.max_tasks = chance(0.4) ? static_cast<std::size_t>(between(1, 40)) : 0;
    static const std::size_t depths[] = {0, 0, 1, 2, 4, 16};
    s.pipeline = depths[between(0, 5)];
    s.channel = chance(0.15) ? std::size_t{64} << 10 : std::size_t{1} << 20;
    return s;
  }

  plan task(std::size_t index, const pool_setup& setup) {
    plan p;
    p.index = index;
    p.seed = rng_();
    // Weights per thousand; faults a thread (or an MPI rank) cannot survive are left out there.
    struct weighted {
      fault kind;
      int weight;
      bool isolated_only;
    };
    static const weighted table[] = {
        {fault::compute, 600, false},         {fault::nap, 90, false},
        {fault::crash_raise_segv, 15, true},  {fault::crash_null_write, 15, true},
        {fault::crash_abort, 10, true},       {fault::crash_kill_self, 10, true},
        {fault::exit_code, 15, true},         {fault::hang, 12, true},
        {fault::throw_exception, 50, false},  {fault::hog, 8, true},
        {fault::big_argument, 20, false},     {fault::big_string_result, 20, false},
        {fault::big_words_result, 15, false}, {fault::big_both, 15, false},
        {fault::cancel_early, 20, false},     {fault::cancel_running, 20, false},
        {fault::spawn_child, 10, true},
    };
    int total = 0;
    for (const auto& w : table) total += (!w.isolated_only || spec_.isolates()) ? w.weight : 0;
    int pick = between(0, total - 1);
    for (const auto& w : table) {
      if (w.isolated_only && !spec_.isolates()) continue;
      if (pick < w.weight) {
        p.kind = w.kind;
        break;
      }
      pick -= w.weight;
    }
    switch (p.kind) {
      case fault::nap:
        p.a = between(0, 20);
        break;
      case fault::exit_code:
        p.a = between(0, 255);
        break;
      case fault::hang:
        p.a = 60'000;
        break;
      case fault::throw_exception: {
        p.a = between(0, throw_what_count - 1);
        std::size_t bytes = static_cast<std::size_t>(between(0, 200));
        if (chance(0.05)) bytes = static_cast<std::size_t>(between(1, 64)) << 10;
        if (chance(0.01) && opts_.max_message_kib > 0) {
          bytes = static_cast<std::size_t>(between(1, opts_.max_message_kib)) << 10;
        }
        p.message = make_string(p.seed, bytes);
        break;
      }
      case fault::hog:
        p.size = (setup.memory_limit >> 20) + static_cast<std::size_t>(between(16, 64));
        p.a = 30'000;  // held long enough for the sampling to see it, well past any timeout
        break;
      case fault::big_argument:
      case fault::big_words_result:
      case fault::big_both:
        p.size = static_cast<std::size_t>(between(0, 3 << 20)) / 4;
        break;
      case fault::big_string_result:
        p.size = static_cast<std::size_t>(between(0, 3 << 20));
        break;
      case fault::cancel_early:
        p.a = between(1, 30);
        break;
      case fault::cancel_running:
        p.a = between(100, 300);
        break;
      case fault::spawn_child:
        p.a = between(0, 2);
        p.b = between(0, 2);
        break;
      default:
        break;
    }
    return p;
  }

 private:
  std::mt19937_64 rng_;
  const executor_spec& spec_;
  const options& opts_;
};

// --- one executor's run ---------------------------------------------------------------------

class executor_run {
 public:
  executor_run(const executor_spec& spec, const options& opts, reporter& report, watchdog& dog,
               std::string token)
      : spec_(spec),
        opts_(opts),
        report_(report),
        dog_(dog),
        token_(std::move(token)),
        planner_(opts.seed ^ std::hash<std::string>{}(spec.name), spec, opts) {}

  /// Builds pools with `make(setup)` one after another until the time is up.
  template <class Make>
  void run(const Make& make) {
    const auto end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>{opts_.seconds});
    const auto started = clock_type::now();
    while (clock_type::now() < end) {
      const pool_setup setup = planner_.pool();
      const resources before = resources::now();
      const std::size_t trees_before = counts_.trees;
      const std::string where =
          spec_.name + " pool " + std::to_string(counts_.pools) + " (" + setup.describe() + ")";
      if (opts_.verbose) std::cerr << "  " << where << "\n";
      {
        auto pool = make(setup);
        one_pool(*pool, setup, where, end);
      }
      ++counts_.pools;
      dog_.progress(where + ": leak check");
      check_leaks(report_, before, token_, where, counts_.trees - trees_before);
    }
    const double elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
    print_summary(elapsed);
  }

 private:
  template <class Pool>
  void one_pool(Pool& pool, const pool_setup& setup, const std::string& where,
                clock_type::time_point end) {
    const int batches = planner_.between(3, 12);
    for (int b = 0; b < batches && clock_type::now() < end; ++b) {
      const bool last = b + 1 == batches || clock_type::now() + 2s > end;
      const bool shutdown_now = last && planner_.chance(0.3);
      batch(pool, setup, where + " batch " + std::to_string(b),
            static_cast<std::size_t>(planner_.between(20, 150)), shutdown_now);
      if (shutdown_now) break;
    }
  }

  template <class Pool>
  void batch(Pool& pool, const pool_setup& setup, const std::string& where, std::size_t count,
             bool shutdown_after) {
    std::vector<plan> plans;
    std::vector<crew::future<value>> futures;
    plans.reserve(count);
    futures.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      plans.push_back(planner_.task(next_index_++, setup));
      if (plans.back().kind == fault::spawn_child) ++counts_.trees;
      futures.push_back(submit(pool, plans.back(), token_));
      if (plans.back().kind == fault::cancel_early) {
        plans.back().cancel_called = true;
        plans.back().cancel_returned = futures.back().cancel();
      }
    }
    // Cancel while running: after a moment, so that most of them have started.
    bool any_running_cancel = false;
    for (const auto& p : plans) any_running_cancel |= p.kind == fault::cancel_running;
    if (any_running_cancel) {
      std::this_thread::sleep_for(std::chrono::milliseconds{planner_.between(20, 120)});
      for (std::size_t i = 0; i < count; ++i) {
        if (plans[i].kind != fault::cancel_running) continue;
        plans[i].cancel_called = true;
        plans[i].cancel_returned = futures[i].cancel();
      }
    }
    if (shutdown_after) {
      for (std::size_t i = 0; i < count; ++i) {
        if (!futures[i].ready()) plans[i].dropped_by_shutdown = true;
      }
      dog_.progress(where + ": shutdown(cancel_pending)");
      pool.shutdown(crew::shutdown_mode::cancel_pending);
      // A pool that is shut down refuses new work with pool_closed.
      auto late = submit(pool, plans.front(), token_).result();
      if (late || late.error().kind() != error_kind::pool_closed) {
        report_.mismatch(
            "submit after shutdown",
            where + ": a submit after shutdown gave " +
                (late ? std::string{"a value"} : std::string{to_string(late.error().kind())}));
      }
    }

    std::vector<observed> seen(count);
    collect(futures, seen, plans, where);
    check(plans, seen, setup, where);
  }

  /// Reads every future, in one of three ways chosen at random, and checks that each resolves
  /// exactly once.
  void collect(std::vector<crew::future<value>>& futures, std::vector<observed>& seen,
               const std::vector<plan>& plans, const std::string& where) {
    const std::size_t count = futures.size();
    std::vector<std::string> pending;
    for (const auto& p : plans)
      pending.push_back("task " + std::to_string(p.index) + ": " + p.describe());
    dog_.unresolved(pending);
    dog_.progress(where + ": waiting");
    std::vector<int> resolved(count, 0);
    const int mode = planner_.between(0, 2);
    if (mode == 0) {
      std::unordered_map<const void*, std::size_t> index_of;
      for (std::size_t i = 0; i < count; ++i) index_of[futures[i].state()] = i;
      std::size_t n = 0;
      for (crew::future<value>& f : crew::as_completed(std::move(futures))) {
        const auto it = index_of.find(f.state());
        if (it == index_of.end()) {
          report_.mismatch("as_completed", where + ": as_completed gave a future it was not given");
          continue;
        }
        const std::size_t i = it->second;
        if (!f.ready()) {
          report_.mismatch("as_completed", where + ": as_completed handed out task " +
                                               std::to_string(plans[i].index) +
                                               " before it was ready");
        }
        read(f, seen[i], planner_.chance(0.5), "as_completed");
        ++resolved[i];
        ++n;
        dog_.progress(where + ": as_completed " + std::to_string(n) + "/" + std::to_string(count));
      }
    } else if (mode == 1) {
      auto all = crew::when_all(std::move(futures)).get();
      if (all.size() != count) {
        report_.mismatch("when_all", where + ": when_all gave " + std::to_string(all.size()) +
                                         " futures for " + std::to_string(count));
      }
      for (std::size_t i = 0; i < all.size() && i < count; ++i) {
        if (!all[i].ready()) {
          report_.mismatch("when_all", where + ": when_all was ready while task " +
                                           std::to_string(plans[i].index) + " was not");
        }
        read(all[i], seen[i], planner_.chance(0.5), "when_all");
        ++resolved[i];
      }
    } else {
      for (std::size_t i = 0; i < count; ++i) {
        read(futures[i], seen[i], planner_.chance(0.5), "in order");
        ++resolved[i];
        dog_.progress(where + ": in order " + std::to_string(i + 1) + "/" + std::to_string(count));
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (resolved[i] != 1) {
        report_.mismatch("resolved " + std::to_string(resolved[i]) + " times",
                         where + ": task " + std::to_string(plans[i].index) + " (" +
                             plans[i].describe() + ") was handed out " +
                             std::to_string(resolved[i]) + " times");
      }
    }
    dog_.progress(where + ": checking");
  }

  /// get() or result(); get()'s exception is turned into the task_error result() would give.
  void read(crew::future<value>& f, observed& o, bool use_get, const char* via) {
    o.how = std::string{via} + (use_get ? "+get" : "+result");
    if (use_get) {
      try {
        o.result = f.get();
      } catch (const crew::task_error& e) {
        o.error = e;
        // Every executor's get() rethrows a standard exception as its own type (rebuilt on
        // this side for the process pools); only types crew cannot rebuild arrive as task_error.
        if (e.kind() == error_kind::exception && e.remote_type().starts_with("std::")) {
          o.note = "get() threw task_error instead of the task's own exception";
        }
      } catch (...) {
        o.error = crew::task_error::from_exception(std::current_exception());
      }
    } else {
      auto r = f.result();
      if (r) {
        o.result = std::move(r).value();
      } else {
        o.error = r.error();
      }
    }
    if (f.valid())
      o.note += (o.note.empty() ? "" : "; ") + std::string{"still valid after reading"};
  }

  void check(const std::vector<plan>& plans, const std::vector<observed>& seen,
             const pool_setup& setup, const std::string& where) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const plan& p = plans[i];
      const observed& o = seen[i];
      ++counts_.tasks;
      ++counts_.outcomes[kind_label(o)];
      ++counts_.by_fault[name_of(p.kind)][kind_label(o)];
      if (p.dropped_by_shutdown) {
        ++counts_.dropped;
        if (o.error && (o.error->kind() == error_kind::cancelled ||
                        o.error->kind() == error_kind::pool_closed)) {
          counts_.drop_kinds.insert(std::string{to_string(o.error->kind())});
        }
      }
      verdict v = judge(p, o, spec_, setup);
      if (v.ok && !o.note.empty()) {
        v.ok = false;
        v.category = std::string{name_of(p.kind)} + " -> " + o.note;
      }
      if (v.ok) continue;
      if (spec_.kind == executor_kind::hybrid && o.error && victim(plans, seen, i, where)) {
        continue;
      }
      std::ostringstream text;
      text << where << ": task " << p.index << " (#" << i << " in batch): injected " << p.describe()
           << "; expected " << v.expected << "; got " << describe(o);
      report_.mismatch(v.category, text.str());
    }
  }

  /// Hybrid pools: a task that failed because another task in its process took the process
  /// down. Allowed by design, so modelled: the culprit must be a task of this batch that failed
  /// with the same pid, kind and signal/exit code, and planned to kill its process. The message
  /// the victim gets is recorded as a finding.
  bool victim(const std::vector<plan>& plans, const std::vector<observed>& seen, std::size_t i,
              const std::string& where) {
    const crew::task_error& e = *seen[i].error;
    if (e.kind() != error_kind::crashed && e.kind() != error_kind::out_of_memory) return false;
    for (std::size_t j = 0; j < plans.size(); ++j) {
      if (j == i || !seen[j].error) continue;
      const crew::task_error& c = *seen[j].error;
      const bool culprit_kind = kills_its_process(plans[j].kind) ||
                                (plans[j].kind == fault::spawn_child && plans[j].b == then_crash);
      if (!culprit_kind || c.pid() != e.pid() || c.kind() != e.kind() || c.signal() != e.signal() ||
          c.exit_code() != e.exit_code()) {
        continue;
      }
      ++counts_.victims;
      const std::string message = e.what();
      const bool names_culprit =
          message.find("failed because task " + c.task_name()) != std::string::npos;
      // _Exit and SIGKILL leave no trace of which thread did it: the message must say so.
      const bool says_unknown =
          message.find("which one ended it is not known") != std::string::npos;
      const bool names_itself_as_crashed =
          message.find("running " + e.task_name() + " was killed") != std::string::npos ||
          message.find("running " + e.task_name() + " exited") != std::string::npos;
      std::ostringstream text;
      text << where << ": task " << plans[i].index << " (" << plans[i].describe()
           << ") failed because task " << plans[j].index << " (" << plans[j].describe()
           << ") in the same process " << e.pid() << " ended it; the victim reads '" << message
           << "' (task_name '" << e.task_name() << "')";
      if (e.kind() == error_kind::out_of_memory) {
        // A process past its memory limit fails every task running in it (docs/hybrid_pool.md:
        // no one can tell which thread allocated).
        report_.finding("hybrid memory limit charges every task running in the process",
                        text.str());
      } else if (says_unknown && !names_culprit) {
        report_.finding("hybrid victim's message says the culprit is not known (exit or SIGKILL)",
                        text.str());
      } else if (names_itself_as_crashed || !names_culprit) {
        report_.mismatch("hybrid victim's message blames the victim, not the culprit", text.str());
      } else {
        report_.finding("hybrid victim's message names the culprit", text.str());
      }
      return true;
    }
    return false;
  }

  void print_summary(double elapsed) {
    std::ostringstream out;
    out << "soak " << spec_.name << ": " << counts_.tasks << " tasks checked in " << counts_.pools
        << " pools, " << static_cast<int>(elapsed) << " s:";
    for (const auto& [label, n] : counts_.outcomes) out << " " << label << "=" << n;
    out << "; hybrid victims=" << counts_.victims << "; pending at shutdown=" << counts_.dropped;
    if (!counts_.drop_kinds.empty()) {
      out << " (ended as";
      for (const auto& k : counts_.drop_kinds) out << " " << k;
      out << ")";
    }
    out << "; tasks with children=" << counts_.trees << "; leaks checked after every pool";
    std::cout << out.str() << std::endl;
    std::cout << "  by fault:";
    for (const auto& [fault_name, outcomes] : counts_.by_fault) {
      std::cout << " [" << fault_name << ":";
      for (const auto& [label, n] : outcomes) std::cout << " " << label << "=" << n;
      std::cout << "]";
    }
    std::cout << std::endl;
  }

  const executor_spec& spec_;
  const options& opts_;
  reporter& report_;
  watchdog& dog_;
  std::string token_;
  planner planner_;
  counters counts_;
  std::size_t next_index_ = 0;
};

std::string fresh_token() {
  std::random_device entropy;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx",
                static_cast<unsigned long long>((std::uint64_t{entropy()} << 32 | entropy()) &
                                                0xffffffffffffULL));
  return buf;
}

crew::process_pool_options process_options(const pool_setup& s, crew::start_method start) {
  crew::process_pool_options o;
  o.workers = s.workers;
  o.start = start;
  o.task_timeout = s.timeout;
  o.kill_grace = s.kill_grace;
  o.memory_limit = s.memory_limit;
  o.max_tasks_per_worker = s.max_tasks;
  o.pipeline_depth = s.pipeline;
  o.channel_bytes = s.channel;
  return o;
}

}  // namespace
}  // namespace soak

int main(int argc, char** argv) {
  crew::init(argc, argv);  // spawn and forkserver workers start here and never return
  using namespace soak;
  const options opts = parse(argc, argv);
  const bool wants_mpi =
      std::find(opts.executors.begin(), opts.executors.end(), "mpi") != opts.executors.end();

#ifdef CREW_SOAK_WITH_MPI
  std::optional<crew::mpi_session> session;
  if (wants_mpi) {
    if (opts.executors.size() != 1) usage("mpi runs alone (--executors mpi), under mpirun");
    if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && std::getenv("PMI_SIZE") == nullptr) {
      std::cout << "soak mpi: SKIPPED: not started by mpirun (run: mpirun -n 3 crew-soak "
                   "--executors mpi)"
                << std::endl;
      return 0;
    }
    session.emplace(argc, argv);  // ranks other than 0 serve here and never return
    if (session->size() < 2) {
      std::cout << "soak mpi: SKIPPED: the MPI job has one rank; start at least 2" << std::endl;
      return 0;
    }
  }
#else
  if (wants_mpi) {
    std::cout << "soak mpi: SKIPPED: crew-soak was built without MPI (CREW_WITH_MPI=OFF)"
              << std::endl;
    if (opts.executors.size() == 1) return 0;
  }
#endif

  // Lead a process group of our own, so that the group check sees only what the soak started
  // (under a test runner the group would otherwise hold the runner and its other tests).
  if (getpgrp() != getpid() && setpgid(0, 0) != 0) {
    std::cerr << "crew-soak: setpgid: " << std::strerror(errno) << "\n";
    return 70;
  }
  std::cout << "crew-soak: seed " << opts.seed << ", " << opts.seconds
            << " s per executor (replay: --seed " << opts.seed << ")" << std::endl;
  reporter report{opts};
  watchdog dog{opts.stall_seconds * slowdown, opts.seed};
  const std::string token = fresh_token();
  {
    // crew's fork server is started on first use and lives as long as this process, shared by
    // every forkserver pool: start it now, so that every leak check's baseline holds it.
    crew::process_pool_options warm;
    warm.workers = 1;
    warm.start = crew::start_method::forkserver;
    crew::process_pool pool{warm};
    (void)pool.submit<&soak::compute>(1).get();
  }

  for (const std::string& name : opts.executors) {
    executor_spec spec{name, executor_kind::process};
    if (name == "thread") {
      spec.kind = executor_kind::thread;
      executor_run{spec, opts, report, dog, token}.run(
          [](const pool_setup& s) { return std::make_unique<crew::thread_pool>(s.workers); });
    } else if (name == "fork" || name == "spawn" || name == "forkserver") {
      spec.start = name == "fork"    ? crew::start_method::fork
                   : name == "spawn" ? crew::start_method::spawn
                                     : crew::start_method::forkserver;
      executor_run{spec, opts, report, dog, token}.run([&spec](const pool_setup& s) {
        return std::make_unique<crew::process_pool>(process_options(s, spec.start));
      });
    } else if (name == "hybrid") {
      spec.kind = executor_kind::hybrid;
      executor_run{spec, opts, report, dog, token}.run([](const pool_setup& s) {
        crew::hybrid_pool_options o;
        o.processes = 2;
        o.threads_per_process = 2;
        o.task_timeout = s.timeout;
        o.kill_grace = s.kill_grace;
        o.memory_limit = s.memory_limit;
        o.max_tasks_per_worker = s.max_tasks;
        o.pipeline_depth = s.pipeline;
        o.channel_bytes = s.channel;
        return std::make_unique<crew::hybrid_pool>(o);
      });
    } else if (name == "mpi") {
#ifdef CREW_SOAK_WITH_MPI
      spec.kind = executor_kind::mpi;
      executor_run{spec, opts, report, dog, token}.run([](const pool_setup&) {
        return std::make_unique<crew::mpi_pool>(crew::mpi_pool_options{});
      });
#endif
    }
  }
  report.summary();
  if (report.failed()) {
    std::cout << "crew-soak: FAILED (seed " << opts.seed << "); replay with --seed " << opts.seed
              << "\n";
    return 1;
  }
  std::cout << "crew-soak: OK (seed " << opts.seed << ")" << std::endl;
  return 0;
}
