// crew bench's measurements of crew's own pools (experiments/pools.cpp) and the fault
// experiment's verdict. The pool measurements run for real, on small workloads: every series
// must come back measured (or failed with a reason), and the fault cases really segfault —
// inside sacrificial children, never in this test process.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sched.h>

#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

#include "experiments/common.hpp"
#include "experiments/fault_isolation.hpp"
#include "experiments/pools.hpp"
#include "lab/experiment.hpp"
#include "lab/machine.hpp"
#include "lab/report.hpp"

namespace crew::lab {
namespace {

int only_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) != 1) return -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return -1;
}

// The communication peers run on cores of their own, threads and children alike: a peer
// started after the measuring thread pinned itself inherits its one core, and must leave it.
TEST(PeerPlacement, PutsThePeerOnAnotherCoreAndGivesTheAffinityBack) {
  cpu_set_t before;
  CPU_ZERO(&before);
  ASSERT_EQ(::sched_getaffinity(0, sizeof before, &before), 0);
  if (CPU_COUNT(&before) < 2) GTEST_SKIP() << "one core: the peers share it, unpinned";
  {
    const peer_placement cores;
    const int measuring = only_cpu();
    ASSERT_GE(measuring, 0) << "the measuring thread runs on one core";
    int peer = -2;
    std::thread echo{[&] {
      cores.place_peer();
      peer = only_cpu();
    }};
    echo.join();
    EXPECT_GE(peer, 0);
    EXPECT_NE(peer, measuring) << "the peer left its parent's core";
  }
  cpu_set_t after;
  CPU_ZERO(&after);
  ASSERT_EQ(::sched_getaffinity(0, sizeof after, &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "the measuring thread's affinity came back";
}

config small_config() {
  config cfg;
  cfg.quick = true;
  cfg.repeat = 2;
  cfg.warmup = 1;
  cfg.cores = 2;
  return cfg;
}

void expect_measured(const series& s, std::size_t samples = 2) {
  EXPECT_EQ(s.state, series_state::ok) << s.name << ": " << s.note;
  ASSERT_EQ(s.samples.size(), samples) << s.name;
  EXPECT_EQ(s.warmup.size(), 1u) << s.name;
  for (double v : s.samples) {
    EXPECT_TRUE(std::isfinite(v)) << s.name;
    EXPECT_GT(v, 0) << s.name;
  }
}

// ---- the fault verdict, on made-up figures ---------------------------------------------------

pools::fault_figures figures(std::vector<double> completed, std::vector<double> survived,
                             int crashed_futures = 0) {
  pools::fault_figures f;
  f.completed.unit = f.survived.unit = "count";
  f.completed.samples = std::move(completed);
  f.survived.samples = std::move(survived);
  f.runs = static_cast<int>(f.completed.samples.size());
  f.crashed_futures = crashed_futures;
  return f;
}

#ifdef CREW_MPI_PROBE_PATH
TEST(MpiTransport, TwoRanksUnderMpirunGiveOneRoundTripPerSample) {
  ::setenv("CREW_MPI_PROBE", CREW_MPI_PROBE_PATH, 1);
  ASSERT_FALSE(pools::mpi_probe_path().empty()) << "crew-mpi-probe or mpirun is missing";
  const std::vector<double> v = pools::mpi_samples(4096, 20, 3);
  ASSERT_EQ(v.size(), 3U);
  for (double seconds : v) {
    EXPECT_GT(seconds, 0.0);
    EXPECT_LT(seconds, 1.0) << "a 4 KiB round trip between two local ranks";
  }
}
#endif

TEST(MpiTransport, MissingProbeIsNotMeasuredNotAFigure) {
  ::setenv("CREW_MPI_PROBE", "/nonexistent/crew-mpi-probe", 1);
  EXPECT_TRUE(pools::mpi_probe_path().empty());
  EXPECT_TRUE(pools::mpi_samples(64, 1, 1).empty());
  const series s = pools::mpi_round_trip(config{}, 0);
  EXPECT_EQ(s.state, series_state::skipped);
  EXPECT_TRUE(s.samples.empty());
  ::unsetenv("CREW_MPI_PROBE");
}

TEST(FaultVerdict, ConfirmedWhenThreadsLoseEverythingAndProcessesOneCrashedTask) {
  const auto j =
      judge_fault(figures({11, 12, 11}, {0, 0, 0}), figures({39, 39, 39}, {1, 1, 1}, 3), 40, true);
  EXPECT_EQ(j.verdict, verdict_kind::confirmed);
  EXPECT_NE(j.text.find("crashed"), std::string::npos) << j.text;
  EXPECT_NE(j.measured.find("crew process_pool: 1 lost"), std::string::npos) << j.measured;
}

TEST(FaultVerdict, ACrewPoolMustReportTheCrashOnTheFuture) {
  // One task lost and the pool lived, but a future did not fail as `crashed` in every run.
  const auto j = judge_fault(figures({11}, {0}), figures({39, 39}, {1, 1}, 1), 40, true);
  EXPECT_EQ(j.verdict, verdict_kind::mixed);
  EXPECT_NE(j.text.find("did not say `crashed`"), std::string::npos) << j.text;
  // The raw forked model has no futures: the same figures confirm the claim for it.
  EXPECT_EQ(judge_fault(figures({11}, {0}), figures({39, 39}, {1, 1}), 40, false).verdict,
            verdict_kind::confirmed);
}

TEST(FaultVerdict, ProcessesLosingMoreThanOneTaskOrDyingIsMixed) {
  EXPECT_EQ(judge_fault(figures({11}, {0}), figures({37}, {1}, 1), 40, true).verdict,
            verdict_kind::mixed);
  EXPECT_EQ(judge_fault(figures({11}, {0}), figures({39}, {0}, 1), 40, true).verdict,
            verdict_kind::mixed);
  // No task lost at all: the fault did not happen, which is not isolation.
  const auto none = judge_fault(figures({11}, {0}), figures({40}, {1}, 0), 40, true);
  EXPECT_EQ(none.verdict, verdict_kind::mixed);
  EXPECT_NE(none.text.find("did not happen"), std::string::npos) << none.text;
}

TEST(FaultVerdict, ThreadPoolThatSurvivesRefutesWithAPoolThatDies) {
  EXPECT_EQ(judge_fault(figures({40}, {1}), figures({20}, {0}), 40, false).verdict,
            verdict_kind::refuted);
  // A thread pool that died in only some runs did not die "every time".
  EXPECT_EQ(judge_fault(figures({11, 40}, {0, 1}), figures({39, 39}, {1, 1}, 2), 40, true).verdict,
            verdict_kind::mixed);
}

TEST(FaultVerdict, MissingFiguresAreNotMeasured) {
  pools::fault_figures none;
  none.completed = absent("x", series_state::failed, "why");
  none.survived = absent("y", series_state::failed, "why");
  EXPECT_EQ(judge_fault(none, figures({39}, {1}, 1), 40, true).verdict, verdict_kind::not_measured);
  EXPECT_EQ(judge_fault(figures({11}, {0}), none, 40, true).verdict, verdict_kind::not_measured);
}

// ---- the fault cases with the real pools -----------------------------------------------------

TEST(PoolFault, ThreadPoolSegfaultEndsItsWholeProcess) {
  const auto f = pools::thread_pool_fault(small_config(), 2, 40, 10);
  ASSERT_EQ(f.runs, 2);
  for (double s : f.survived.samples) EXPECT_EQ(s, 0);        // the pool's process died every run
  for (double c : f.completed.samples) EXPECT_LE(c, 39);      // the faulting task never finished
  EXPECT_TRUE(f.completed.note.empty()) << f.completed.note;  // it died of SIGSEGV, nothing else
}

TEST(PoolFault, ProcessPoolLosesOnlyTheFaultingTaskAndReplacesTheWorker) {
  const auto f = pools::process_pool_fault(small_config(), 2, 40, 10);
  ASSERT_EQ(f.runs, 2);
  for (double s : f.survived.samples) EXPECT_EQ(s, 1);
  for (double c : f.completed.samples) EXPECT_EQ(c, 39);
  EXPECT_EQ(f.crashed_futures, 2);  // the faulting future failed as `crashed`, each run
  EXPECT_GE(f.restarts, 2);         // and the pool started a replacement each run
  EXPECT_EQ(judge_fault(pools::thread_pool_fault(small_config(), 2, 40, 10), f, 40, true).verdict,
            verdict_kind::confirmed);
}

// ---- every other crew measurement, small ----------------------------------------------------

TEST(PoolMeasurements, StartUpPerStartMethod) {
  const config cfg = small_config();
  expect_measured(pools::thread_pool_startup(cfg));
  expect_measured(pools::process_pool_startup(cfg, "fork"));
  // This test binary's main does not call crew::init: spawn and forkserver start all the same.
  expect_measured(pools::process_pool_startup(cfg, "spawn"));
  expect_measured(pools::process_pool_startup(cfg, "forkserver"));
}

TEST(PoolMeasurements, SharedQueueChannelRoundTrips) {
  for (std::size_t bytes : {std::size_t{64}, std::size_t{3} << 20}) {
    const auto p = pools::process_channel_samples(bytes, 4, 3);
    ASSERT_EQ(p.size(), 3u) << bytes;
    for (double x : p) EXPECT_GT(x, 0) << bytes;
    const auto t = pools::thread_channel_samples(bytes, 4, 3);
    ASSERT_EQ(t.size(), 3u) << bytes;
    for (double x : t) EXPECT_GT(x, 0) << bytes;
  }
}

// Fairness: the threads-against-processes comparison of the communication experiment uses one
// mechanism and one waiting strategy on both sides, and every series names its mechanism (in
// the JSON too), so a reader sees exactly where two rows differ.
TEST(Fairness, CommunicationComparesThreadsAndProcessesThroughTheSameMechanism) {
  const experiment* e = find_experiment("communication");
  ASSERT_NE(e, nullptr);
  config cfg = small_config();
  cfg.quick = true;
  silent_progress quiet;
  const result r = e->run(cfg, quiet);
  const series* threads = find_series(r, "threads: crew::shared_queue channel, 64.0 B");
  const series* processes = find_series(r, "processes: crew::shared_queue channel, 64.0 B");
  ASSERT_NE(threads, nullptr);
  ASSERT_NE(processes, nullptr);
  EXPECT_TRUE(threads->has_data()) << threads->note;
  EXPECT_TRUE(processes->has_data()) << processes->note;
  EXPECT_FALSE(threads->mechanism.empty());
  EXPECT_EQ(threads->mechanism, processes->mechanism);
  EXPECT_NE(threads->mechanism.find("futex"), std::string::npos) << threads->mechanism;
  for (const auto& s : r.data) EXPECT_FALSE(s.mechanism.empty()) << s.name;
  const auto j = to_json(describe_machine(), cfg, {r});
  for (const auto& s : j["experiments"][0]["series"])
    EXPECT_TRUE(s.contains("mechanism")) << s["name"];
  EXPECT_NE(r.measured.find("through crew's channel: processes"), std::string::npos) << r.measured;
  // The output says it too: one "How:" line names both channel rows and their one mechanism.
  const auto how = mechanism_lines(r);
  ASSERT_FALSE(how.empty());
  EXPECT_EQ(how[0].rfind("threads: crew::shared_queue channel and processes: "
                         "crew::shared_queue channel: ",
                         0),
            0u)
      << how[0];
}

TEST(PoolMeasurements, ProcessPoolTaskRoundTrips) {
  for (std::size_t bytes : {std::size_t{64}, std::size_t{1} << 20}) {
    const auto v = pools::process_pool_echo_samples(bytes, 3, 2);
    ASSERT_EQ(v.size(), 2u) << bytes;
    for (double x : v) EXPECT_GT(x, 0) << bytes;
  }
}

TEST(PoolMeasurements, CpuScaling) {
  const config cfg = small_config();
  const series t = pools::thread_pool_cpu(cfg, 2, 8, 1000);
  expect_measured(t);
  EXPECT_EQ(t.group, "crew thread_pool");
  EXPECT_EQ(t.x, 2);
  const series p = pools::process_pool_cpu(cfg, 2, 8, 1000);
  expect_measured(p);
  EXPECT_EQ(p.name, "crew process_pool × 2");
}

TEST(PoolMeasurements, IoSleepThroughput) {
  const config cfg = small_config();
  // 16 sleeps of 1 ms on 4 workers: at most 16 / 0.004 = 4000 tasks/s, whatever the load.
  for (const series& s : {pools::thread_pool_sleep(cfg, 4, 16, 0.001),
                          pools::process_pool_sleep(cfg, 4, 16, 0.001)}) {
    expect_measured(s);
    for (double v : s.samples) EXPECT_LE(v, 4000) << s.name;
  }
}

TEST(PoolMeasurements, IoRequestToAClosedPortFails) {
  // A loopback port that is bound but not listening refuses connections: the request task
  // fails, and the series must say failed rather than hold a throughput.
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const series r = pools::thread_pool_requests(small_config(), 2, 4, ntohs(addr.sin_port));
  ::close(s);
  EXPECT_EQ(r.state, series_state::failed);
  EXPECT_TRUE(r.samples.empty());
}

TEST(PoolMeasurements, DataCopiedAsATaskArgumentAndShared) {
  std::vector<unsigned char> input(1 << 20, 7);
  expect_measured(pools::process_pool_copy(small_config(), 2, 4, input.data(), input.size()));
  expect_measured(
      pools::process_pool_shared_buffer(small_config(), 2, 4, input.data(), input.size()));
}

TEST(PoolMeasurements, SharedBufferHandover) {
  const auto figures = pools::process_pool_handover(small_config(), std::size_t{64} << 20);
  expect_measured(figures.no_op);
  expect_measured(figures.handover);
  for (double v : figures.handover.samples) EXPECT_LT(v, 1.0);  // a mapping, not a copy
}

TEST(PoolMeasurements, PerTaskCost) {
  const series s = pools::process_pool_per_task(small_config(), 2, 50);
  expect_measured(s);
  for (double v : s.samples) EXPECT_LT(v, 1.0);  // a trivial task, far below a second
}

}  // namespace
}  // namespace crew::lab
