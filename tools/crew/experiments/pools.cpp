#include "experiments/pools.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

#include "crew/algorithm.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/shared_array.hpp"
#include "crew/shared_queue.hpp"
#include "crew/thread_pool.hpp"
#include "experiments/common.hpp"
#include "experiments/kernels.hpp"
#include "lab/child.hpp"

// The task functions the pools run. A process pool names a task by its function's name, so they
// live in a named namespace (an anonymous one would give every translation unit the same
// spelling) and take only serializable arguments.
namespace crew::lab::pool_tasks {

int trivial(int x) {
  return x + 1;
}

std::vector<std::byte> echo(std::vector<std::byte> message) {
  return message;
}

std::uint64_t kernel(std::pair<std::uint64_t, std::uint64_t> job) {
  return cpu_kernel(job.first, job.second);
}

void sleep_for(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

// One connection per worker (thread or process), opened on its first request, closed when the
// thread or process ends.
struct connection {
  int fd = -1;
  std::uint16_t port = 0;
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    if (fd >= 0) ::close(fd);
  }
};

bool request(std::uint16_t port) {
  thread_local connection conn;
  if (conn.fd < 0 || conn.port != port) {
    if (conn.fd >= 0) ::close(conn.fd);
    conn.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    conn.port = port;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (conn.fd < 0 ||
        ::connect(conn.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      if (conn.fd >= 0) ::close(conn.fd);
      conn.fd = -1;
      return false;
    }
    const int one = 1;
    ::setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char c = 'q';
  return write_all(conn.fd, &c, 1) && read_all(conn.fd, &c, 1);
}

std::uint64_t checksum(const std::vector<unsigned char>& data) {
  return read_all_bytes(data.data(), data.size());
}

std::uint64_t checksum_shared(crew::shared_array<const unsigned char> data) {
  return read_all_bytes(data.data(), data.size());
}

int nothing() {
  return 1;
}

int first_and_last(crew::shared_array<const std::byte> data) {
  return std::to_integer<int>(data[0]) + std::to_integer<int>(data[data.size() - 1]);
}

// A real invalid write (not raise()): the kernel delivers SIGSEGV exactly as for a bug.
void segfault() {
  void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *static_cast<volatile int*>(page) = 1;
}

// The thread-pool fault task reports on `fd` the moment it is done, so the bench sees what got
// out before the crash took the process.
void faulty_reporting(unsigned i, unsigned bad, int fd) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (i == bad) segfault();
  const char c = 1;
  write_all(fd, &c, 1);
}

// The process-pool fault task: the pool's owner sees each result on its future.
unsigned faulty(unsigned i, unsigned bad) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (i == bad) segfault();
  return i;
}

}  // namespace crew::lab::pool_tasks

namespace crew::lab::pools {
namespace {

namespace tasks = crew::lab::pool_tasks;

// Runs `body` (which returns every sample, warm-up first) in a sacrificial child and files what
// it returned into `s`. Any failure — an exception (its message becomes the note), a crash, the
// timeout, a NaN sample — marks the series failed; never a partial figure.
series sampled_in_child(const config& cfg, series s, double timeout_s,
                        const std::function<std::vector<double>()>& body, int measured = -1) {
  const auto out = run_in_child(
      [&](int) -> std::string {
        try {
          return "D" + pack_doubles(body());
        } catch (const std::exception& e) {
          return std::string("E") + e.what();
        }
      },
      timeout_s);
  const auto want = static_cast<std::size_t>(cfg.warmup + (measured < 0 ? cfg.repeat : measured));
  std::string why;
  if (out.timed_out) {
    why = "did not finish within " + format_value(timeout_s, "s");
  } else if (!out.ok()) {
    why = out.signal != 0 ? "the pool's owner died of signal " + std::to_string(out.signal)
                          : "the pool's owner exited with code " + std::to_string(out.exit_code);
  } else if (out.output.empty() || out.output[0] != 'D') {
    why = out.output.empty() ? "no figures came back" : out.output.substr(1);
  } else {
    const auto v = unpack_doubles(out.output.substr(1));
    if (v.size() != want) {
      why = "the measurement returned too few samples";
    } else if (std::any_of(v.begin(), v.end(), [](double x) { return !std::isfinite(x); })) {
      why = "a task failed during the measurement";
    } else {
      file_samples(s, v, cfg.warmup);
      return s;
    }
  }
  s.state = series_state::failed;
  s.note = why;
  return s;
}

series named(std::string name, std::string group, double x, std::string unit) {
  series s;
  s.name = std::move(name);
  s.group = std::move(group);
  s.x = x;
  s.unit = std::move(unit);
  return s;
}

std::string times(unsigned workers) {
  return " × " + std::to_string(workers);
}

crew::start_method parse_start(std::string_view m) {
  if (m == "spawn") return crew::start_method::spawn;
  if (m == "forkserver") return crew::start_method::forkserver;
  return crew::start_method::fork;
}

crew::process_pool_options pool_options(unsigned workers,
                                        crew::start_method start = crew::start_method::fork) {
  crew::process_pool_options o;
  o.workers = workers;
  o.start = start;
  return o;
}

// Waits for every future of a batch; false if any failed.
template <class T>
bool all_ok(std::vector<crew::future<T>>& futures) {
  bool ok = true;
  for (auto& f : futures) ok = static_cast<bool>(f.result()) && ok;
  return ok;
}

void no_core_dumps() {
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

}  // namespace

int heavy_repeat(const config& cfg) {
  return cfg.quick ? std::min(cfg.repeat, 3) : cfg.repeat;
}

// ---- creation -----------------------------------------------------------------------------

series thread_pool_startup(const config& cfg) {
  const int n = cfg.warmup + cfg.repeat;
  return sampled_in_child(
      cfg, named("crew thread_pool start-up to first result (2 workers)", {}, 0, "s"), 60, [n] {
        std::vector<double> v;
        for (int i = 0; i < n; ++i) {
          const auto t0 = clock::now();
          crew::thread_pool pool{2};
          auto f = pool.submit<&tasks::trivial>(i);
          // wait_for, not get(): get() would run a task that has not started on this thread,
          // and the figure is meant to include a worker picking it up.
          f.wait_for(std::chrono::seconds(30));
          if (f.get() != i + 1) throw std::runtime_error("wrong result");
          v.push_back(seconds_since(t0));
        }
        return v;
      });
}

series process_pool_startup(const config& cfg, std::string_view start_method) {
  const int n = cfg.warmup + cfg.repeat;
  const auto method = parse_start(start_method);
  return sampled_in_child(
      cfg,
      named("crew process_pool start-up to first result (" + std::string(start_method) +
                ", 2 workers)",
            {}, 0, "s"),
      120, [n, method] {
        std::vector<double> v;
        for (int i = 0; i < n; ++i) {
          const auto t0 = clock::now();
          crew::process_pool pool{pool_options(2, method)};
          auto r = pool.submit<&tasks::trivial>(i).result();
          if (!r)
            throw std::runtime_error(std::string("the first task failed: ") + r.error().what());
          v.push_back(seconds_since(t0));
        }
        return v;
      });
}

// ---- communication --------------------------------------------------------------------------

namespace {

using byte_channel = crew::channel_end<std::vector<std::byte>, std::vector<std::byte>>;

// A channel whose each direction holds two messages of `bytes` (a message may take half).
std::pair<byte_channel, byte_channel> channel_for(std::size_t bytes) {
  return crew::make_channel<std::vector<std::byte>, std::vector<std::byte>>(
      std::max<std::size_t>(4 * (bytes + 64), std::size_t{1} << 16));
}

void channel_echo(byte_channel end) {
  try {
    while (auto m = end.receive()) end.send(*m);
  } catch (...) {
  }
}

std::vector<double> channel_measure(byte_channel end, std::size_t bytes, int iters, int n) {
  std::vector<double> v;
  try {
    const std::vector<std::byte> message(bytes, std::byte{'x'});
    for (int s = 0; s < n; ++s) {
      const auto t0 = clock::now();
      for (int i = 0; i < iters; ++i) {
        end.send(message);
        const auto back = end.receive_for(std::chrono::minutes(2));
        if (!back || back->size() != bytes) return {};
      }
      v.push_back(seconds_since(t0) / iters);
    }
  } catch (const std::exception&) {
    v.clear();
  }
  return v;
}

}  // namespace

const char* const channel_mechanism =
    "crew::make_channel<std::vector<std::byte>, ...>: two crew::shared_queues in shared memory, "
    "each message encoded, copied in and out under the queue's locks, and decoded; each side "
    "spins, then sleeps on a futex";

std::vector<double> process_channel_samples(std::size_t bytes, int iters, int n) {
  try {
    auto [near, far] = channel_for(bytes);
    const peer_placement core;
    const pid_t pid = ::fork();
    if (pid < 0) return {};
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      core.place_peer();
      channel_echo(far);
      ::_exit(0);
    }
    auto v = channel_measure(near, bytes, iters, n);
    near.close();  // the echo's receive() ends
    ::kill(pid, SIGKILL);
    wait_for(pid);
    return v;
  } catch (const std::exception&) {
    return {};
  }
}

std::vector<double> thread_channel_samples(std::size_t bytes, int iters, int n) {
  try {
    auto [near, far] = channel_for(bytes);
    const peer_placement core;
    std::thread echo([&core, far = far]() mutable {
      core.place_peer();
      channel_echo(far);
    });
    auto v = channel_measure(near, bytes, iters, n);
    near.close();
    echo.join();
    return v;
  } catch (const std::exception&) {
    return {};
  }
}

std::vector<double> process_pool_echo_samples(std::size_t bytes, int iters, int n) {
  const auto out = run_in_child(
      [&](int) {
        crew::process_pool pool{pool_options(1)};
        const std::vector<std::byte> message(bytes, std::byte{'x'});
        std::vector<double> v;
        for (int s = 0; s < n; ++s) {
          const auto t0 = clock::now();
          for (int i = 0; i < iters; ++i) {
            auto r = pool.submit<&tasks::echo>(message).result();
            if (!r || r.value().size() != bytes) return std::string{};
          }
          v.push_back(seconds_since(t0) / iters);
        }
        return pack_doubles(v);
      },
      300);
  if (!out.ok()) return {};
  auto v = unpack_doubles(out.output);
  if (v.size() != static_cast<std::size_t>(n)) return {};
  return v;
}

std::string mpi_probe_path() {
  std::error_code ec;
  std::filesystem::path probe;
  if (const char* given = std::getenv("CREW_MPI_PROBE"); given != nullptr && *given != '\0') {
    probe = given;  // where an install keeps it elsewhere (and for tests)
  } else {
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    probe = self.parent_path() / "crew-mpi-probe";
  }
  if (!std::filesystem::exists(probe, ec)) return {};
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (std::size_t at = 0; at <= dirs.size();) {
    const std::size_t end = std::min(dirs.find(':', at), dirs.size());
    if (std::filesystem::exists(std::filesystem::path{dirs.substr(at, end - at)} / "mpirun", ec)) {
      return probe.string();
    }
    at = end + 1;
  }
  return {};
}

std::vector<double> mpi_samples(std::size_t bytes, int iters, int n) {
  const std::string probe = mpi_probe_path();
  if (probe.empty()) return {};
  // Two ranks on this machine over Open MPI's shared-memory transport; as root (containers, CI)
  // Open MPI needs --allow-run-as-root, and --oversubscribe when cores are few.
  const std::string command =
      "mpirun -n 2 --oversubscribe --allow-run-as-root --mca btl self,vader '" + probe + "' " +
      std::to_string(bytes) + ' ' + std::to_string(iters) + ' ' + std::to_string(n) +
      " 2>/dev/null";
  FILE* out = ::popen(command.c_str(), "r");
  if (out == nullptr) return {};
  std::vector<double> v;
  double value = 0;
  while (std::fscanf(out, "%lf", &value) == 1) v.push_back(value);
  const int status = ::pclose(out);
  if (status != 0 || v.size() != static_cast<std::size_t>(n)) return {};
  return v;
}

series mpi_round_trip(const config&, std::size_t bytes) {
  return absent("MPI ranks", series_state::skipped,
                "not measured: MPI needs mpirun and crew-mpi-probe next to crew (built with "
                "Open MPI: libopenmpi-dev, openmpi-bin)",
                "MPI", static_cast<double>(bytes), "s");
}

// ---- CPU-bound scaling ----------------------------------------------------------------------

namespace {
std::vector<std::pair<std::uint64_t, std::uint64_t>> kernel_jobs(unsigned tasks,
                                                                 std::uint64_t iterations) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> jobs;
  for (unsigned i = 0; i < tasks; ++i) jobs.emplace_back(iterations, i);
  return jobs;
}
}  // namespace

series thread_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                       std::uint64_t iterations) {
  const int n = cfg.warmup + cfg.repeat;
  return sampled_in_child(
      cfg, named("crew thread_pool" + times(workers), "crew thread_pool", workers, "s"), 120, [=] {
        crew::thread_pool pool{workers};
        const auto jobs = kernel_jobs(tasks, iterations);
        std::vector<double> v;
        for (int s = 0; s < n; ++s) {
          // submit + wait_idle rather than crew::map: map's get() would let this thread run
          // chunks too, so "1 worker" would compute on two threads.
          const auto t0 = clock::now();
          std::vector<crew::future<std::uint64_t>> fs;
          fs.reserve(jobs.size());
          for (const auto& j : jobs) fs.push_back(pool.submit<&tasks::kernel>(j));
          pool.wait_idle();
          const double dt = seconds_since(t0);
          v.push_back(all_ok(fs) ? dt : NAN);
        }
        return v;
      });
}

namespace {

// The CPU kernel through crew::map on a pool `make_pool()` builds in a sacrificial child: one task
// per item (grain 1), as the other models draw one task at a time.
template <class MakePool>
series map_kernel_in_child(const config& cfg, series s, unsigned tasks, std::uint64_t iterations,
                           MakePool make_pool) {
  const int n = cfg.warmup + cfg.repeat;
  return sampled_in_child(cfg, std::move(s), 120, [=] {
    auto pool = make_pool();
    const auto jobs = kernel_jobs(tasks, iterations);
    std::vector<double> v;
    for (int k = 0; k < n; ++k) {
      const auto t0 = clock::now();
      const auto sums = crew::map<&tasks::kernel>(*pool, jobs, {.grain = 1});
      const double dt = seconds_since(t0);
      v.push_back(sums.size() == jobs.size() ? dt : NAN);
    }
    return v;
  });
}

}  // namespace

series process_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                        std::uint64_t iterations) {
  return map_kernel_in_child(
      cfg, named("crew process_pool" + times(workers), "crew process_pool", workers, "s"), tasks,
      iterations,
      [workers] { return std::make_unique<crew::process_pool>(pool_options(workers)); });
}

series hybrid_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                       std::uint64_t iterations) {
  // Two threads per process where the count allows (1 → 1×1, 4 → 2×2), as hybrid_pool does.
  const unsigned threads = workers >= 2 && workers % 2 == 0 ? 2 : 1;
  return map_kernel_in_child(
      cfg, named("crew hybrid_pool" + times(workers), "crew hybrid_pool", workers, "s"), tasks,
      iterations, [workers, threads] {
        crew::hybrid_pool_options o;
        o.processes = workers / threads;
        o.threads_per_process = threads;
        return std::make_unique<crew::hybrid_pool>(o);
      });
}

// ---- I/O-bound scaling ----------------------------------------------------------------------

namespace {

// Starts a pool of `workers` in a child; each sample submits `tasks` tasks made by `submit_one`
// (which returns the future), waits for them all, and records tasks / wall time.
template <class Pool, class Make, class Submit>
series io_throughput(const config& cfg, series s, unsigned tasks, Make make_pool,
                     Submit submit_one) {
  const int n = cfg.warmup + cfg.repeat;
  return sampled_in_child(cfg, std::move(s), 180, [=] {
    Pool pool{make_pool()};
    std::vector<double> v;
    for (int k = 0; k < n; ++k) {
      const auto t0 = clock::now();
      std::vector<decltype(submit_one(pool))> fs;
      fs.reserve(tasks);
      for (unsigned i = 0; i < tasks; ++i) fs.push_back(submit_one(pool));
      pool.wait_idle();
      const double dt = seconds_since(t0);
      bool ok = true;
      for (auto& f : fs) {
        auto r = f.result();
        if constexpr (std::is_same_v<decltype(r), crew::outcome<bool>>) {
          ok = ok && r && r.value();
        } else {
          ok = ok && static_cast<bool>(r);
        }
      }
      v.push_back(ok ? tasks / dt : NAN);
    }
    return v;
  });
}

}  // namespace

series thread_pool_sleep(const config& cfg, unsigned workers, unsigned tasks, double sleep_s) {
  return io_throughput<crew::thread_pool>(
      cfg,
      named("crew thread_pool, sleep" + times(workers), "crew thread_pool, sleep", workers,
            "tasks/s"),
      tasks, [workers] { return workers; },
      [sleep_s](crew::thread_pool& p) { return p.submit<&tasks::sleep_for>(sleep_s); });
}

series process_pool_sleep(const config& cfg, unsigned workers, unsigned tasks, double sleep_s) {
  return io_throughput<crew::process_pool>(
      cfg,
      named("crew process_pool, sleep" + times(workers), "crew process_pool, sleep", workers,
            "tasks/s"),
      tasks, [workers] { return pool_options(workers); },
      [sleep_s](crew::process_pool& p) { return p.submit<&tasks::sleep_for>(sleep_s); });
}

series thread_pool_requests(const config& cfg, unsigned workers, unsigned tasks,
                            std::uint16_t port) {
  return io_throughput<crew::thread_pool>(
      cfg,
      named("crew thread_pool, loopback requests" + times(workers),
            "crew thread_pool, loopback requests", workers, "tasks/s"),
      tasks, [workers] { return workers; },
      [port](crew::thread_pool& p) { return p.submit<&tasks::request>(port); });
}

series process_pool_requests(const config& cfg, unsigned workers, unsigned tasks,
                             std::uint16_t port) {
  return io_throughput<crew::process_pool>(
      cfg,
      named("crew process_pool, loopback requests" + times(workers),
            "crew process_pool, loopback requests", workers, "tasks/s"),
      tasks, [workers] { return pool_options(workers); },
      [port](crew::process_pool& p) { return p.submit<&tasks::request>(port); });
}

// ---- data sharing ---------------------------------------------------------------------------

series process_pool_copy(const config& cfg, unsigned workers, unsigned tasks,
                         const unsigned char* data, std::size_t bytes) {
  const int measured = heavy_repeat(cfg);
  const int n = cfg.warmup + measured;
  return sampled_in_child(
      cfg, named("crew process_pool, input as a task argument", {}, 0, "s"), 300,
      [=] {
        crew::process_pool pool{pool_options(workers)};
        const std::vector<unsigned char> input(data, data + bytes);
        const std::uint64_t expect = read_all_bytes(input.data(), input.size());
        std::vector<double> v;
        for (int k = 0; k < n; ++k) {
          const auto t0 = clock::now();
          bool ok = true;
          // In rounds of one task per worker, like the pipe case: at most `workers` encoded
          // copies of the input exist at once.
          for (unsigned done = 0; done < tasks;) {
            const unsigned round = std::min(workers, tasks - done);
            std::vector<crew::future<std::uint64_t>> fs;
            for (unsigned i = 0; i < round; ++i) fs.push_back(pool.submit<&tasks::checksum>(input));
            for (auto& f : fs) {
              auto r = f.result();
              ok = ok && r && r.value() == expect;
            }
            done += round;
          }
          const double dt = seconds_since(t0);
          v.push_back(ok ? dt : NAN);
        }
        return v;
      },
      measured);
}

series process_pool_shared_buffer(const config& cfg, unsigned workers, unsigned tasks,
                                  const unsigned char* data, std::size_t bytes) {
  const int measured = heavy_repeat(cfg);
  const int n = cfg.warmup + measured;
  return sampled_in_child(
      cfg, named("crew process_pool, input as a crew::shared_array", {}, 0, "s"), 300,
      [=] {
        crew::process_pool pool{pool_options(workers)};
        auto input = crew::shared_array<unsigned char>::create(bytes);
        std::copy(data, data + bytes, input.begin());
        const std::uint64_t expect = read_all_bytes(input.data(), input.size());
        std::vector<double> v;
        for (int k = 0; k < n; ++k) {
          const auto t0 = clock::now();
          bool ok = true;
          // Every task at once: only a descriptor crosses, so nothing is copied per task.
          std::vector<crew::future<std::uint64_t>> fs;
          for (unsigned i = 0; i < tasks; ++i)
            fs.push_back(pool.submit<&tasks::checksum_shared>(input));
          for (auto& f : fs) {
            auto r = f.result();
            ok = ok && r && r.value() == expect;
          }
          const double dt = seconds_since(t0);
          v.push_back(ok ? dt : NAN);
        }
        return v;
      },
      measured);
}

handover_figures process_pool_handover(const config& cfg, std::size_t bytes) {
  handover_figures out;
  out.no_op = named("crew process_pool, no-op task round trip", {}, 0, "s");
  out.handover = named("crew process_pool, " + format_value(static_cast<double>(bytes), "B") +
                           " crew::shared_buffer handed over, first and last byte read",
                       {}, 0, "s");
  const int n = cfg.warmup + cfg.repeat;
  const int iters = cfg.quick ? 200 : 1000;
  const auto run = run_in_child(
      [&](int) {
        crew::process_pool pool{pool_options(1)};
        auto buffer = crew::shared_buffer::create(bytes);
        buffer[0] = std::byte{1};
        buffer[bytes - 1] = std::byte{2};
        std::vector<double> v;
        // Interleaved, in one pool: sample s of each is measured at the same moment.
        for (int s = 0; s < n; ++s) {
          auto t0 = clock::now();
          for (int i = 0; i < iters; ++i) {
            if (pool.submit<&tasks::nothing>().get() != 1) return std::string{};
          }
          v.push_back(seconds_since(t0) / iters);
          t0 = clock::now();
          for (int i = 0; i < iters; ++i) {
            if (pool.submit<&tasks::first_and_last>(buffer).get() != 3) return std::string{};
          }
          v.push_back(seconds_since(t0) / iters);
        }
        return pack_doubles(v);
      },
      300);
  const std::vector<double> v = run.ok() ? unpack_doubles(run.output) : std::vector<double>{};
  if (v.size() != 2 * static_cast<std::size_t>(n)) {
    out.no_op.state = out.handover.state = series_state::failed;
    out.no_op.note = out.handover.note = "the measuring process failed";
    return out;
  }
  for (int s = 0; s < n; ++s) {
    const bool warm_up = s < cfg.warmup;
    (warm_up ? out.no_op.warmup : out.no_op.samples).push_back(v[2 * static_cast<std::size_t>(s)]);
    (warm_up ? out.handover.warmup : out.handover.samples)
        .push_back(v[2 * static_cast<std::size_t>(s) + 1]);
  }
  return out;
}

// ---- fault isolation ------------------------------------------------------------------------

namespace {
fault_figures fault_series(const char* model, unsigned tasks) {
  fault_figures f;
  f.completed.name = std::string(model) + ": tasks completed of " + std::to_string(tasks);
  f.completed.unit = "count";
  f.survived.name = std::string(model) + ": pool process survived (1 = yes)";
  f.survived.unit = "count";
  return f;
}

int runs_for(const config& cfg) {
  return std::max(1, std::min(cfg.repeat, 3));
}
}  // namespace

fault_figures thread_pool_fault(const config& cfg, unsigned workers, unsigned tasks, unsigned bad) {
  fault_figures f = fault_series("crew thread_pool", tasks);
  for (int i = 0; i < runs_for(cfg); ++i) {
    const auto out = run_in_child(
        [&](int fd) {
          no_core_dumps();
          crew::thread_pool pool{workers};
          for (unsigned t = 0; t < tasks; ++t)
            (void)pool.submit<&tasks::faulty_reporting>(t, bad, fd);
          pool.wait_idle();
          return std::string{};
        },
        60);
    f.completed.samples.push_back(static_cast<double>(out.output.size()));
    f.survived.samples.push_back(out.ok() ? 1 : 0);
    if (out.signal != 0 && out.signal != SIGSEGV)
      f.completed.note = "the pool's process died of signal " + std::to_string(out.signal);
    ++f.runs;
  }
  return f;
}

fault_figures process_pool_fault(const config& cfg, unsigned workers, unsigned tasks,
                                 unsigned bad) {
  fault_figures f = fault_series("crew process_pool", tasks);
  for (int i = 0; i < runs_for(cfg); ++i) {
    // One byte per task, in submission order, written as its future resolves: 'c' completed,
    // 'x' failed as crashed, 'o' failed otherwise; then "R<restarts>".
    const auto out = run_in_child(
        [&](int fd) {
          no_core_dumps();  // inherited by the forked workers: no core file for the fault
          crew::process_pool pool{pool_options(workers)};
          std::vector<crew::future<unsigned>> fs;
          for (unsigned t = 0; t < tasks; ++t) fs.push_back(pool.submit<&tasks::faulty>(t, bad));
          for (unsigned t = 0; t < tasks; ++t) {
            auto r = fs[t].result();
            const char c = r && r.value() == t                             ? 'c'
                           : !r && r.error().kind() == error_kind::crashed ? 'x'
                                                                           : 'o';
            write_all(fd, &c, 1);
          }
          pool.wait_idle();
          return "R" + std::to_string(pool.stats().restarts);
        },
        60);
    const auto r_at = out.output.find('R');
    const std::string marks = out.output.substr(0, r_at);
    f.completed.samples.push_back(static_cast<double>(std::count(marks.begin(), marks.end(), 'c')));
    f.survived.samples.push_back(out.ok() ? 1 : 0);
    f.crashed_futures += static_cast<int>(std::count(marks.begin(), marks.end(), 'x'));
    if (r_at != std::string::npos) f.restarts += std::atoi(out.output.c_str() + r_at + 1);
    if (!out.ok())
      f.completed.note = out.signal != 0
                             ? "the pool's process died of signal " + std::to_string(out.signal)
                             : "the pool's process did not finish cleanly";
    ++f.runs;
  }
  return f;
}

// ---- peers ----------------------------------------------------------------------------------

series process_pool_per_task(const config& cfg, unsigned workers, unsigned trivial) {
  const int n = cfg.warmup + cfg.repeat;
  return sampled_in_child(cfg, named("crew process_pool, per trivial task", {}, 0, "s"), 120, [=] {
    crew::process_pool pool{pool_options(workers)};
    std::vector<double> v;
    for (int k = 0; k < n; ++k) {
      const auto t0 = clock::now();
      std::vector<crew::future<int>> fs;
      fs.reserve(trivial);
      for (unsigned i = 0; i < trivial; ++i)
        fs.push_back(pool.submit<&tasks::trivial>(static_cast<int>(i)));
      const bool ok = all_ok(fs);
      const double dt = seconds_since(t0) / trivial;
      v.push_back(ok ? dt : NAN);
    }
    return v;
  });
}

}  // namespace crew::lab::pools
