// Experiment 3 — communication: round-trip latency and bandwidth of messages from 64 B to
// 64 MiB between threads and between processes over a pipe, a Unix socket and TCP on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "experiments/common.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

namespace crew::lab {
namespace {

std::string size_name(std::size_t b) {
  return format_value(static_cast<double>(b), "B");
}

int iterations_for(const config& cfg, std::size_t bytes) {
  const std::size_t budget = cfg.quick ? (std::size_t{2} << 20) : (std::size_t{16} << 20);
  const std::size_t cap = cfg.quick ? 300 : 3000;
  return static_cast<int>(std::clamp<std::size_t>(budget / bytes, 1, cap));
}

// ---- processes: an echo child on a pair of file descriptors --------------------------------

[[noreturn]] void echo_loop(int rfd, int wfd, std::size_t bytes) {
  std::vector<char> buf(bytes);
  while (read_all(rfd, buf.data(), bytes) && write_all(wfd, buf.data(), bytes)) {
  }
  ::_exit(0);
}

std::vector<double> fd_samples(int wfd, int rfd, std::size_t bytes, int iters, int n) {
  std::vector<char> out(bytes, 'x'), in(bytes);
  std::vector<double> v;
  for (int s = 0; s < n; ++s) {
    const auto t0 = clock::now();
    for (int i = 0; i < iters; ++i) {
      if (!write_all(wfd, out.data(), bytes) || !read_all(rfd, in.data(), bytes)) return {};
    }
    v.push_back(seconds_since(t0) / iters);
  }
  return v;
}

std::vector<double> pipe_samples(std::size_t bytes, int iters, int n) {
  int down[2], up[2];
  if (::pipe(down) != 0) return {};
  if (::pipe(up) != 0) {
    ::close(down[0]);
    ::close(down[1]);
    return {};
  }
  const peer_placement cores;
  const pid_t pid = ::fork();
  if (pid == 0) {
    cores.place_peer();
    ::close(down[1]);
    ::close(up[0]);
    echo_loop(down[0], up[1], bytes);
  }
  ::close(down[0]);
  ::close(up[1]);
  auto v = pid > 0 ? fd_samples(down[1], up[0], bytes, iters, n) : std::vector<double>{};
  ::close(down[1]);
  ::close(up[0]);
  if (pid > 0) wait_for(pid);
  return v;
}

std::vector<double> unix_samples(std::size_t bytes, int iters, int n) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return {};
  const peer_placement cores;
  const pid_t pid = ::fork();
  if (pid == 0) {
    cores.place_peer();
    ::close(sv[0]);
    echo_loop(sv[1], sv[1], bytes);
  }
  ::close(sv[1]);
  auto v = pid > 0 ? fd_samples(sv[0], sv[0], bytes, iters, n) : std::vector<double>{};
  ::close(sv[0]);
  if (pid > 0) wait_for(pid);
  return v;
}

std::vector<double> tcp_samples(std::size_t bytes, int iters, int n) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return {};
  }
  const peer_placement cores;
  const pid_t pid = ::fork();
  if (pid == 0) {
    cores.place_peer();
    const int c = ::accept(listener, nullptr, nullptr);
    if (c < 0) ::_exit(1);
    const int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    echo_loop(c, c, bytes);
  }
  ::close(listener);
  std::vector<double> v;
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s >= 0 && pid > 0 && ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    v = fd_samples(s, s, bytes, iters, n);
  }
  if (s >= 0) ::close(s);
  if (pid > 0) wait_for(pid);
  return v;
}

using sampler = std::vector<double> (*)(std::size_t, int, int);

struct transport {
  const char* group;
  sampler fn;
  bool kernel;  // a kernel transport (pipe, socket): what the claim compares shared memory with
  std::string mechanism;  // how the two sides hand a message over and wait (series::mechanism)
};

constexpr const char* kernel_wait = "; the reader blocks in read() until the kernel wakes it";

const std::vector<transport>& transports() {
  // The two channel rows are the threads-against-processes comparison: one mechanism, one
  // waiting strategy (pools::channel_mechanism), only the peer differs.
  static const std::vector<transport> all = {
      {"threads: crew::shared_queue channel", pools::thread_channel_samples, false,
       pools::channel_mechanism},
      {"processes: crew::shared_queue channel", pools::process_channel_samples, false,
       pools::channel_mechanism},
      {"processes: pipe", pipe_samples, true, std::string("two pipes") + kernel_wait},
      {"processes: Unix socket", unix_samples, true,
       std::string("a SOCK_STREAM socketpair") + kernel_wait},
      {"processes: TCP loopback", tcp_samples, true,
       std::string("TCP_NODELAY on 127.0.0.1") + kernel_wait},
      {"processes: crew process_pool task", pools::process_pool_echo_samples, false,
       "crew::process_pool submit + result(): encode, the pool's request and result rings (a "
       "memfd past the inline limit), decode; waits as the pool does"},
      {"processes: MPI (2 Open MPI ranks)", pools::mpi_samples, false,
       "Open MPI's shared-memory transport (btl vader), MPI_Send/MPI_Recv; Open MPI busy-polls"},
  };
  return all;
}

result run(const config& cfg, progress& prog) {
  result r;
  std::vector<std::size_t> sizes;
  if (cfg.quick) {
    sizes = {64, 4096, 256 << 10, 64 << 20};
  } else {
    for (std::size_t b = 64; b <= (std::size_t{64} << 20); b *= 4) sizes.push_back(b);
  }
  const int n = cfg.warmup + cfg.repeat;
  const bool have_mpi = !pools::mpi_probe_path().empty();
  for (const auto& t : transports()) {
    if (t.fn == pools::mpi_samples && !have_mpi) {
      r.data.push_back(pools::mpi_round_trip(cfg, 0));
      r.data.back().mechanism = t.mechanism;
      continue;
    }
    for (std::size_t b : sizes) {
      prog.step(std::string(t.group) + ", " + size_name(b));
      series s;
      s.name = std::string(t.group) + ", " + size_name(b);
      s.group = t.group;
      s.x = static_cast<double>(b);
      s.unit = "s";
      s.mechanism = t.mechanism;
      // A process_pool task moving tens of MiB each way is the slowest figure here: with
      // --quick it gets pools::heavy_repeat measured runs.
      const bool heavy = t.fn == pools::process_pool_echo_samples && b >= (std::size_t{16} << 20);
      auto v = t.fn(b, iterations_for(cfg, b), heavy ? cfg.warmup + pools::heavy_repeat(cfg) : n);
      if (v.empty()) {
        s.state = series_state::failed;
        s.note = "the transport could not be set up";
      } else {
        file_samples(s, v, cfg.warmup);
      }
      r.data.push_back(std::move(s));
    }
  }
  r.method =
      "A round trip sends a message of the given size and waits for the same number of "
      "bytes back from an echo peer. A public crew::make_channel (two crew::shared_queues in "
      "shared memory; each message encoded, copied in and out, decoded; each side spins, then "
      "sleeps on a futex) runs once between two threads of one process and once between the "
      "bench and a forked echo child: the same code and the same waiting on both sides, so the "
      "two rows differ only in the peer. In every series but the process_pool task and MPI, "
      "the two peers are pinned to cores of their own when there are two, so that the "
      "scheduler's placement does not decide the comparison. The kernel transports are a forked "
      "echo child on a "
      "pipe pair, a socketpair or a TCP_NODELAY connection on 127.0.0.1. The crew process_pool "
      "task case submits an "
      "echo task taking and returning the message to a one-worker pool and waits for its "
      "result: encoding, the ring (or a memfd past 64 KiB), decoding, and the pool's "
      "manager thread. MPI is two ranks started by mpirun -n 2 crew-mpi-probe (Open MPI's "
      "shared-memory transport, MPI_Send/MPI_Recv). Each sample averages as many round trips as "
      "fit about " +
      std::string(cfg.quick ? "2 MiB" : "16 MiB") +
      " of traffic. Bandwidth = 2 × size / round-trip time.";
  r.chart = {chart_kind::lines, "message size", "round-trip time", "B", true, true, true};

  r.derived.columns = {"size"};
  for (const auto& t : transports()) r.derived.columns.push_back(std::string(t.group) + " B/W");
  for (std::size_t b : sizes) {
    std::vector<std::string> row{size_name(b)};
    for (const auto& t : transports()) {
      const series* s = find_series(r, std::string(t.group) + ", " + size_name(b));
      row.push_back(s && s->has_data()
                        ? format_value(2.0 * static_cast<double>(b) / s->stats().median, "B/s")
                        : "n/a");
    }
    r.derived.rows.push_back(std::move(row));
  }
  const std::string small = size_name(sizes.front());
  auto median_of = [&](const char* group) {
    const series* s = find_series(r, std::string(group) + ", " + small);
    return s && s->has_data() ? s->stats().median : NAN;
  };
  double best_fd = INFINITY;
  std::string best_name;
  for (const auto& t : transports()) {
    const double m = median_of(t.group);
    if (t.kernel && !std::isnan(m) && m < best_fd) {
      best_fd = m;
      best_name = t.group;
    }
  }
  // The claim is about processes: crew's channel between two processes against the best kernel
  // transport between two processes. The same channel between threads is the reference when
  // the one between processes failed.
  const double channel = median_of("processes: crew::shared_queue channel");
  const double thr = median_of("threads: crew::shared_queue channel");
  const bool use_processes = !std::isnan(channel);
  const double shm = use_processes ? channel : thr;
  if (std::isnan(shm) || best_name.empty()) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "a transport failed";
    r.measured = "n/a";
    return r;
  }
  const double ratio = best_fd / shm;
  r.measured = small + " round trip through crew's channel: processes " +
               format_value(channel, "s") + ", threads " + format_value(thr, "s") +
               "; fastest kernel transport (" + best_name + ") " + format_value(best_fd, "s");
  r.verdict = ratio >= 1.5 ? verdict_kind::confirmed
              : ratio >= 1 ? verdict_kind::mixed
                           : verdict_kind::refuted;
  r.verdict_text = std::string("for small messages shared memory") +
                   (use_processes ? " between processes (crew's channel)"
                                  : " between threads (the channel between processes failed)") +
                   " is " + format_value(ratio, "x") + " faster than the best kernel transport";
  const double task = median_of("processes: crew process_pool task");
  if (!std::isnan(task))
    r.notes.push_back("a whole crew process_pool task round trip (" + small + " argument and " +
                      "result) took " + format_value(task, "s") + ", " +
                      format_value(task / best_fd, "x") + " the best kernel transport's echo");
  return r;
}

}  // namespace

experiment communication_experiment() {
  return {"communication", "Communication",
          "For small messages a shared-memory hand-off is much faster than any kernel transport "
          "(pipe, Unix socket, TCP); for large messages all of them are limited by copying.",
          run};
}

}  // namespace crew::lab
