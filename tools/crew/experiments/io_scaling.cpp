// Experiment 6 — I/O-bound scaling: tasks that mostly wait, on up to hundreds of workers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <deque>
#include <new>
#include <thread>

#include "experiments/common.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

namespace crew::lab {
namespace {

struct alignas(64) counter {
  std::atomic<unsigned> next{0};
};

// A loopback server that answers each 1-byte request after `delay` seconds: the stand-in for a
// database or web service. It runs in a child and serves until killed.
[[noreturn]] void serve_delayed(int listener, double delay) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  std::deque<std::pair<clock::time_point, int>> due;  // FIFO is sorted: the delay is constant
  const auto d = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(delay));
  epoll_event events[256];
  for (;;) {
    int timeout = -1;
    if (!due.empty()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::microseconds>(due.front().first - clock::now())
              .count();
      timeout = left <= 0 ? 0 : static_cast<int>((left + 999) / 1000);
    }
    const int n = ::epoll_wait(ep, events, 256, timeout);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        const int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        epoll_event cev{};
        cev.events = EPOLLIN;
        cev.data.fd = c;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        continue;
      }
      char buf[64];
      const ssize_t k = ::read(fd, buf, sizeof buf);
      if (k <= 0) {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        continue;
      }
      for (ssize_t j = 0; j < k; ++j) due.emplace_back(clock::now() + d, fd);
    }
    const auto now = clock::now();
    while (!due.empty() && due.front().first <= now) {
      const char c = 'r';
      write_all(due.front().second, &c, 1);
      due.pop_front();
    }
  }
}

struct server {
  pid_t pid = -1;
  sockaddr_in addr{};
};

server start_server(double delay) {
  server s;
  const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) return s;
  s.addr.sin_family = AF_INET;
  s.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof s.addr;
  if (::bind(l, reinterpret_cast<sockaddr*>(&s.addr), sizeof s.addr) != 0 ||
      ::listen(l, 1024) != 0 || ::getsockname(l, reinterpret_cast<sockaddr*>(&s.addr), &len) != 0) {
    ::close(l);
    return s;
  }
  s.pid = ::fork();
  if (s.pid == 0) serve_delayed(l, delay);
  ::close(l);
  return s;
}

void stop_server(server& s) {
  if (s.pid <= 0) return;
  ::kill(s.pid, SIGKILL);
  wait_for(s.pid);
  s.pid = -1;
}

unsigned task_count(const config& cfg, unsigned w) {
  return std::max(cfg.quick ? 40u : 200u, 4 * w);
}

double sleep_team(bool processes, unsigned w, unsigned tasks, double sleep_s) {
  auto* q = new (map_shared(sizeof(counter))) counter{};
  const double t = timed_team(processes, w, [&](unsigned, const std::function<void()>& go) {
    go();
    while (q->next.fetch_add(1, std::memory_order_relaxed) < tasks)
      std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
  });
  unmap(q, sizeof(counter));
  return tasks / t;
}

double request_team(bool processes, unsigned w, unsigned tasks, const server& srv) {
  auto* q = new (map_shared(sizeof(counter))) counter{};
  std::atomic<bool> failed{false};
  const double t = timed_team(processes, w, [&](unsigned, const std::function<void()>& go) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok =
        s >= 0 && ::connect(s, reinterpret_cast<const sockaddr*>(&srv.addr), sizeof srv.addr) == 0;
    if (ok) {
      const int one = 1;
      ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    go();
    while (ok && q->next.fetch_add(1, std::memory_order_relaxed) < tasks) {
      char c = 'q';
      if (!write_all(s, &c, 1) || !read_all(s, &c, 1)) {
        failed = true;
        break;
      }
    }
    if (!ok) failed = true;
    if (s >= 0) ::close(s);
    if (processes && failed) ::_exit(1);
  });
  unmap(q, sizeof(counter));
  return failed ? std::nan("") : tasks / t;
}

result run(const config& cfg, progress& prog) {
  result r;
  std::vector<unsigned> ws = cfg.quick ? std::vector<unsigned>{1, 8, 64, 256}
                                       : std::vector<unsigned>{1, 2, 4, 8, 16, 32, 64, 128, 256};
  const double sleep_s = 0.001, delay_s = 0.001;
  for (unsigned w : ws) {
    for (bool processes : {false, true}) {
      const std::string g = std::string(processes ? "processes" : "threads") + ", sleep";
      prog.step(g + " × " + std::to_string(w));
      r.data.push_back(measure(
          cfg, g + " × " + std::to_string(w), "tasks/s",
          [&] { return sleep_team(processes, w, task_count(cfg, w), sleep_s); }, g, w));
    }
    prog.step("crew thread_pool, sleep × " + std::to_string(w));
    r.data.push_back(pools::thread_pool_sleep(cfg, w, task_count(cfg, w), sleep_s));
    if (w <= pools::max_pool_processes) {
      prog.step("crew process_pool, sleep × " + std::to_string(w));
      r.data.push_back(pools::process_pool_sleep(cfg, w, task_count(cfg, w), sleep_s));
    }
  }
  server srv = start_server(delay_s);
  for (unsigned w : ws) {
    for (bool processes : {false, true}) {
      const std::string g =
          std::string(processes ? "processes" : "threads") + ", loopback requests";
      if (srv.pid <= 0) {
        r.data.push_back(absent(g + " × " + std::to_string(w), series_state::failed,
                                "the loopback server could not start", g, w, "tasks/s"));
        continue;
      }
      prog.step(g + " × " + std::to_string(w));
      series s = measure(
          cfg, g + " × " + std::to_string(w), "tasks/s",
          [&] { return request_team(processes, w, task_count(cfg, w), srv); }, g, w);
      for (double v : s.samples)
        if (std::isnan(v)) {
          s.state = series_state::failed;
          s.note = "a request to the loopback server failed";
        }
      r.data.push_back(std::move(s));
    }
    if (srv.pid <= 0) continue;
    const std::uint16_t port = ntohs(srv.addr.sin_port);
    prog.step("crew thread_pool, loopback requests × " + std::to_string(w));
    r.data.push_back(pools::thread_pool_requests(cfg, w, task_count(cfg, w), port));
    if (w <= pools::max_pool_processes) {
      prog.step("crew process_pool, loopback requests × " + std::to_string(w));
      r.data.push_back(pools::process_pool_requests(cfg, w, task_count(cfg, w), port));
    }
  }
  stop_server(srv);
  if (ws.back() > pools::max_pool_processes)
    r.notes.push_back("crew process_pool runs up to " + std::to_string(pools::max_pool_processes) +
                      " worker processes here; larger counts are measured for threads, "
                      "crew thread_pool and raw forked processes only");

  r.method =
      "Each task either sleeps 1 ms (std::this_thread::sleep_for) or sends one byte to a "
      "loopback TCP server that the bench starts and stops itself and that answers after "
      "1 ms. N workers (threads, or processes forked before the clock starts) draw " +
      std::string(cfg.quick ? "max(40, 4N)" : "max(200, 4N)") +
      " tasks from a shared counter; a sample is tasks / wall time. Each worker holds one "
      "connection to the server. crew's pools get the same tasks through submit<&task> "
      "(a thread_pool of N threads; a process_pool of N forked worker processes, at most " +
      std::to_string(pools::max_pool_processes) +
      "), started in a child of the bench before the clock; a sample is submission of every "
      "task to wait_idle(). A pool worker opens its connection on its first request "
      "(during the warm-up run).";
  r.chart = {chart_kind::lines, "workers", "throughput (tasks/s)", "", true, true, false};
  r.derived.columns = {"workers",
                       "threads sleep",
                       "processes sleep",
                       "threads requests",
                       "processes requests",
                       "crew thread_pool sleep",
                       "crew process_pool sleep",
                       "crew thread_pool requests",
                       "crew process_pool requests"};
  auto med = [&](const std::string& name) {
    const auto* s = find_series(r, name);
    return s && s->has_data() ? s->stats().median : NAN;
  };
  for (unsigned w : ws) {
    const auto n = " × " + std::to_string(w);
    r.derived.rows.push_back(
        {std::to_string(w), format_value(med("threads, sleep" + n), "tasks/s"),
         format_value(med("processes, sleep" + n), "tasks/s"),
         format_value(med("threads, loopback requests" + n), "tasks/s"),
         format_value(med("processes, loopback requests" + n), "tasks/s"),
         format_value(med("crew thread_pool, sleep" + n), "tasks/s"),
         format_value(med("crew process_pool, sleep" + n), "tasks/s"),
         format_value(med("crew thread_pool, loopback requests" + n), "tasks/s"),
         format_value(med("crew process_pool, loopback requests" + n), "tasks/s")});
  }
  const auto top = " × " + std::to_string(ws.back());
  const double growth_t =
      med("threads, loopback requests" + top) / med("threads, loopback requests × 1");
  const double growth_p =
      med("processes, loopback requests" + top) / med("processes, loopback requests × 1");
  const double sleep_t = med("threads, sleep" + top) / med("threads, sleep × 1");
  r.measured = "from 1 to " + std::to_string(ws.back()) + " workers, request throughput grew " +
               format_value(growth_t, "x") + " (threads), " + format_value(growth_p, "x") +
               " (processes); sleeps " + format_value(sleep_t, "x") + " (threads)";
  {
    unsigned ptop = ws.front();
    for (unsigned w : ws)
      if (w <= pools::max_pool_processes) ptop = w;
    const auto pt = " × " + std::to_string(ptop);
    const double crew_t = med("crew thread_pool, loopback requests" + top) /
                          med("crew thread_pool, loopback requests × 1");
    const double crew_p = med("crew process_pool, loopback requests" + pt) /
                          med("crew process_pool, loopback requests × 1");
    r.notes.push_back("crew's pools: request throughput grew " + format_value(crew_t, "x") +
                      " from 1 to " + std::to_string(ws.back()) + " thread_pool workers, " +
                      format_value(crew_p, "x") + " from 1 to " + std::to_string(ptop) +
                      " process_pool workers");
  }
  if (std::isnan(growth_t) || std::isnan(growth_p)) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "a measurement failed";
    return r;
  }
  const double want = 4.0 * cfg.cores;
  const bool t_ok = growth_t >= want, p_ok = growth_p >= want;
  r.verdict = t_ok && p_ok   ? verdict_kind::confirmed
              : t_ok || p_ok ? verdict_kind::mixed
                             : verdict_kind::refuted;
  r.verdict_text = std::string("throughput ") +
                   (t_ok && p_ok ? "kept growing" : "did not keep growing for every model") +
                   " far past the " + std::to_string(cfg.cores) +
                   " cores (threshold: " + format_value(want, "x") + ")";
  return r;
}

}  // namespace

experiment io_scaling_experiment() {
  return {"io", "I/O-bound scaling",
          "For tasks that mostly wait, throughput keeps growing with workers far past the number "
          "of cores, with threads and with processes.",
          run};
}

}  // namespace crew::lab
