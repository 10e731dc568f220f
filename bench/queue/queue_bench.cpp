// bench_queue: crew::shared_queue against its peers (docs/shared_queue.md).
//
//   bench_queue [--reps N] [--messages M]
//
// One producer and one consumer move M messages of 64 bytes (a std::array<std::uint64_t, 8>)
// through a queue of 64 KiB, and the figure is messages per second, timed by the consumer from
// its first message to its last:
//   - crew::shared_queue between two processes (the producer forked, the consumer this process);
//   - Boost.Interprocess message_queue between two processes (the same shapes: 64-byte messages,
//     room for as many as crew's 64 KiB holds), in an anonymous-named segment removed after;
//   - crew::shared_queue between two threads of this process;
//   - moodycamel::ConcurrentQueue between two threads (lock-free, in-process only; the consumer
//     spins on try_dequeue, the producer never waits: it is unbounded), when its header is
//     installed (Debian's libconcurrentqueue-dev).
// Both crew and Boost block when full or empty (crew: futex; Boost: its condition variables).
// On a machine with two CPUs or more the consumer runs on the first allowed CPU and the producer
// on the second, in every series, so that placement does not decide the figures.
// The series alternate, N runs each, so load from elsewhere hits them alike; every run checks
// that each message arrived once and in order. Output: markdown with the machine, the load at
// start and end, the command, medians and ranges, and ratios from the same run.
// scripts/bench-report.sh queue keeps one run in docs/benchmarks/queue.md.
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "../common/machine.hpp"
#include "crew/shared_array.hpp"
#include "crew/shared_queue.hpp"

#if __has_include(<concurrentqueue/concurrentqueue.h>)
#include <concurrentqueue/concurrentqueue.h>
#define CREW_BENCH_HAVE_MOODYCAMEL 1
#else
#define CREW_BENCH_HAVE_MOODYCAMEL 0
#endif

namespace {

using crew_bench::figure;
using crew_bench::summarize;
using message = std::array<std::uint64_t, 8>;
using clock_type = std::chrono::steady_clock;
namespace bip = boost::interprocess;

constexpr std::size_t queue_bytes = 64 * 1024;

// The CPUs this process may use when it starts; the consumer takes the first, the producer the
// second (none pinned with fewer than two).
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}
const std::vector<int> cpus = allowed_cpus();

void pin_to(std::size_t which) {
  if (cpus.size() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[which], &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_queue: %s\n", what.c_str());
  std::exit(1);
}

message make(std::uint64_t i) {
  message m{};
  m[0] = i;
  m[7] = ~i;
  return m;
}

void check(const message& m, std::uint64_t expect) {
  if (m[0] != expect || m[7] != ~expect) fail("a message arrived out of order or damaged");
}

// Runs `producer` in a forked child; returns when it has exited (checked).
template <class Producer, class Consumer>
double across_processes(Producer producer, Consumer consumer) {
  const pid_t pid = fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    pin_to(1);
    producer();
    _exit(0);
  }
  const double rate = consumer();
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("the producer process failed");
  return rate;
}

double crew_processes(std::uint64_t n) {
  auto q = crew::shared_queue<message>::create(queue_bytes);
  return across_processes(
      [&] {
        for (std::uint64_t i = 0; i < n; ++i) q.push(make(i));
      },
      [&] {
        auto first = q.pop();
        if (!first) fail("crew queue ended early");
        check(*first, 0);
        const auto t0 = clock_type::now();
        for (std::uint64_t i = 1; i < n; ++i) {
          auto m = q.pop();
          if (!m) fail("crew queue ended early");
          check(*m, i);
        }
        return static_cast<double>(n - 1) / seconds_since(t0);
      });
}

double crew_threads(std::uint64_t n) {
  auto q = crew::shared_queue<message>::create(queue_bytes);
  std::thread producer([&] {
    pin_to(1);
    for (std::uint64_t i = 0; i < n; ++i) q.push(make(i));
  });
  auto first = q.pop();
  if (!first) fail("crew queue ended early");
  const auto t0 = clock_type::now();
  for (std::uint64_t i = 1; i < n; ++i) {
    auto m = q.pop();
    if (!m) fail("crew queue ended early");
    check(*m, i);
  }
  const double rate = static_cast<double>(n - 1) / seconds_since(t0);
  producer.join();
  return rate;
}

double boost_processes(std::uint64_t n) {
  const std::string name = "crew-bench-mq-" + std::to_string(getpid());
  bip::message_queue::remove(name.c_str());
  // As many 64-byte messages as crew's queue holds (each takes 64 + 8 bytes there).
  const std::size_t slots = queue_bytes / (sizeof(message) + 8);
  bip::message_queue mq(bip::create_only, name.c_str(), slots, sizeof(message));
  const double rate = across_processes(
      [&] {
        bip::message_queue out(bip::open_only, name.c_str());
        for (std::uint64_t i = 0; i < n; ++i) {
          const message m = make(i);
          out.send(&m, sizeof m, 0);
        }
      },
      [&] {
        message m{};
        std::size_t got = 0;
        unsigned priority = 0;
        mq.receive(&m, sizeof m, got, priority);
        check(m, 0);
        const auto t0 = clock_type::now();
        for (std::uint64_t i = 1; i < n; ++i) {
          mq.receive(&m, sizeof m, got, priority);
          if (got != sizeof m) fail("boost message of the wrong size");
          check(m, i);
        }
        return static_cast<double>(n - 1) / seconds_since(t0);
      });
  bip::message_queue::remove(name.c_str());
  return rate;
}

#if CREW_BENCH_HAVE_MOODYCAMEL
double moodycamel_threads(std::uint64_t n) {
  moodycamel::ConcurrentQueue<message> q;
  std::thread producer([&] {
    pin_to(1);
    for (std::uint64_t i = 0; i < n; ++i) q.enqueue(make(i));
  });
  message m{};
  while (!q.try_dequeue(m)) {
  }
  check(m, 0);
  const auto t0 = clock_type::now();
  for (std::uint64_t i = 1; i < n; ++i) {
    while (!q.try_dequeue(m)) {
    }
    check(m, i);
  }
  const double rate = static_cast<double>(n - 1) / seconds_since(t0);
  producer.join();
  return rate;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  std::uint64_t messages = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (arg == "--messages" && i + 1 < argc) {
      messages = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: bench_queue [--reps N] [--messages M]\n");
      return 2;
    }
  }
  if (reps < 1 || messages < 2) fail("--reps must be at least 1 and --messages at least 2");
  const std::string load_before = crew_bench::load_average();
  pin_to(0);  // the consumer, in every series

  struct series {
    const char* name;
    std::function<double(std::uint64_t)> run;
    std::vector<double> rates;
  };
  std::vector<series> all = {
      {"crew::shared_queue, two processes", crew_processes, {}},
      {"Boost.Interprocess message_queue, two processes", boost_processes, {}},
      {"crew::shared_queue, two threads", crew_threads, {}},
  };
#if CREW_BENCH_HAVE_MOODYCAMEL
  all.push_back({"moodycamel::ConcurrentQueue, two threads", moodycamel_threads, {}});
#endif
  for (int r = 0; r < reps; ++r) {
    for (auto& s : all) s.rates.push_back(s.run(messages));
  }

  std::printf("# crew::shared_queue against its peers\n\n");
  std::printf("Machine: %s.  \n", crew_bench::machine().c_str());
  std::printf("Load average: %s at the start, %s at the end.  \n", load_before.c_str(),
              crew_bench::load_average().c_str());
  std::printf(
      "Command: `bench_queue --reps %d --messages %llu`: one producer, one consumer, "
      "64-byte messages, a 64 KiB queue; %d runs of each series, alternating.\n\n",
      reps, static_cast<unsigned long long>(messages), reps);
  std::printf("| series | messages/s (median) | min | max |\n| --- | ---: | ---: | ---: |\n");
  std::map<std::string, figure> figures;
  for (auto& s : all) {
    const figure f = summarize(s.rates);
    figures[s.name] = f;
    std::printf("| %s | %.3g M | %.3g M | %.3g M |\n", s.name, f.median / 1e6, f.min / 1e6,
                f.max / 1e6);
  }
  const auto ratio = [&](const char* a, const char* b) {
    return figures[a].median / figures[b].median;
  };
  std::printf("\n| comparison | ratio | target |\n| --- | ---: | --- |\n");
  std::printf("| crew processes / Boost.Interprocess processes | %.2fx | >= 5x |\n",
              ratio("crew::shared_queue, two processes",
                    "Boost.Interprocess message_queue, two processes"));
  std::printf("| crew threads / crew processes | %.2fx | <= 2x |\n",
              ratio("crew::shared_queue, two threads", "crew::shared_queue, two processes"));
#if CREW_BENCH_HAVE_MOODYCAMEL
  std::printf("| moodycamel threads / crew threads | %.2fx | reference |\n",
              ratio("moodycamel::ConcurrentQueue, two threads", "crew::shared_queue, two threads"));
#endif
  return 0;
}
