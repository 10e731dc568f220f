// The machine description for big machines: sockets, physical cores, SMT siblings, NUMA nodes
// and the cgroup CPU quota, read from fake /sys and cgroup trees shaped like real ones; and the
// CPU scaling experiment run past the cores of this machine (oversubscribed).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lab/experiment.hpp"
#include "lab/machine.hpp"
#include "lab/report.hpp"

namespace crew::lab {
namespace {

namespace fs = std::filesystem;

class fake_tree {
 public:
  fake_tree() : root_(fs::temp_directory_path() / ("crew-machine-" + std::to_string(::getpid()))) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~fake_tree() { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) const {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << '\n';
  }
  std::string path(const std::string& rel = {}) const { return (root_ / rel).string(); }

 private:
  fs::path root_;
};

TEST(Machine, CpuListsCountEveryCpu) {
  EXPECT_EQ(count_cpu_list("0"), 1u);
  EXPECT_EQ(count_cpu_list("0-3,8-11"), 8u);
  EXPECT_EQ(count_cpu_list("0,2,4-5"), 4u);
  EXPECT_EQ(count_cpu_list(""), 0u);
  EXPECT_EQ(count_cpu_list("x,1"), 1u);
}

// Two sockets of two cores, two hardware threads each, one NUMA node per socket; CPU 7 offline.
TEST(Machine, TopologyOfATwoSocketSmtMachine) {
  fake_tree t;
  t.write("devices/system/cpu/online", "0-6");
  for (int cpu = 0; cpu < 8; ++cpu) {
    const std::string d = "devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    t.write(d + "physical_package_id", std::to_string(cpu / 4));
    t.write(d + "core_id", std::to_string(cpu % 2));  // siblings (0,2) (1,3) (4,6) (5,7)
  }
  t.write("devices/system/node/online", "0-1");
  const cpu_topology topo = read_topology(t.path());
  EXPECT_EQ(topo.sockets, 2u);
  EXPECT_EQ(topo.logical_cpus, 7u);
  EXPECT_EQ(topo.physical_cores, 4u);
  EXPECT_EQ(topo.smt_siblings, 2u);  // the most threads any core has: CPU 7 offline breaks one pair
  EXPECT_EQ(topo.numa_nodes, 2u);

  t.write("devices/system/cpu/online", "0-7");
  const cpu_topology all = read_topology(t.path());
  EXPECT_EQ(all.physical_cores, 4u);
  EXPECT_EQ(all.smt_siblings, 2u);
}

TEST(Machine, MissingSysfsGivesZerosNotAnError) {
  const cpu_topology topo = read_topology("/no/such/sys");
  EXPECT_EQ(topo.sockets, 0u);
  EXPECT_EQ(topo.numa_nodes, 0u);
}

TEST(Machine, CgroupV2QuotaTakesTheTightestAncestor) {
  fake_tree t;
  t.write("proc_self_cgroup", "0::/jobs/build");
  t.write("cgroup/cgroup.controllers", "cpu memory");
  t.write("cgroup/cpu.max", "max 100000");
  t.write("cgroup/jobs/cpu.max", "150000 100000");  // 1.5 CPUs for every job
  t.write("cgroup/jobs/build/cpu.max", "400000 100000");
  const cpu_quota q = read_cpu_quota(t.path("proc_self_cgroup"), t.path("cgroup"));
  EXPECT_DOUBLE_EQ(q.cpus, 1.5);
  EXPECT_NE(q.source.find("jobs/cpu.max"), std::string::npos) << q.source;
}

TEST(Machine, CgroupV2WithoutLimitIsZero) {
  fake_tree t;
  t.write("proc_self_cgroup", "0::/");
  t.write("cgroup/cgroup.controllers", "cpu");
  t.write("cgroup/cpu.max", "max 100000");
  EXPECT_EQ(read_cpu_quota(t.path("proc_self_cgroup"), t.path("cgroup")).cpus, 0);
}

TEST(Machine, CgroupV1Quota) {
  fake_tree t;
  t.write("proc_self_cgroup", "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/");
  t.write("cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000");
  t.write("cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000");
  t.write("cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1");
  t.write("cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000");
  const cpu_quota q = read_cpu_quota(t.path("proc_self_cgroup"), t.path("cgroup"));
  EXPECT_DOUBLE_EQ(q.cpus, 3.0);
}

TEST(Machine, ThisMachineIsDescribedAndInTheJson) {
  const machine_info m = describe_machine();
  EXPECT_GE(m.sockets, 1u);
  EXPECT_GE(m.physical_cores, 1u);
  EXPECT_GE(m.smt_siblings, 1u);
  EXPECT_GE(m.numa_nodes, 1u);
  EXPECT_GE(m.physical_cores * m.smt_siblings, m.sockets);
  const auto j = to_json(m, config{}, {});
  for (const char* key :
       {"sockets", "physical_cores", "smt_siblings", "numa_nodes", "cgroup_cpu_quota"})
    EXPECT_TRUE(j["machine"].contains(key)) << key;
  EXPECT_NE(describe_layout(m).find("NUMA"), std::string::npos) << describe_layout(m);
}

TEST(Scaling, DefaultWorkerCountsGoPastTheCores) {
  for (unsigned cores : {1u, 2u, 16u, 128u}) {
    const auto w = default_workers(cores);
    EXPECT_EQ(w.back(), 2 * cores);
    EXPECT_GE(scaling_tasks(w), 4 * w.back());
  }
  EXPECT_EQ(scaling_tasks({1, 2, 4}), 48u);
}

// --workers past the cores of this machine: every model runs oversubscribed, says so, and the
// verdict still reads the scaling at the cores.
TEST(Scaling, CpuExperimentRunsOversubscribed) {
  const experiment* e = find_experiment("cpu");
  ASSERT_NE(e, nullptr);
  config cfg;
  cfg.quick = true;
  cfg.repeat = 1;
  cfg.warmup = 0;
  cfg.cores = usable_cores();
  const unsigned over = 4 * cfg.cores + 1;
  cfg.workers = {1, over};
  silent_progress quiet;
  const result r = e->run(cfg, quiet);
  for (const char* group :
       {"threads (std::thread)", "processes (fork)", "crew thread_pool", "crew process_pool"}) {
    const series* s = find_series(r, std::string(group) + " × " + std::to_string(over));
    ASSERT_NE(s, nullptr) << group;
    EXPECT_TRUE(s->has_data()) << group << ": " << s->note;
    EXPECT_NE(s->note.find("oversubscribed: " + std::to_string(over) + " workers"),
              std::string::npos)
        << s->note;
  }
  ASSERT_EQ(r.derived.rows.size(), 2u);
  EXPECT_EQ(r.derived.rows[1].back(), "yes");
  EXPECT_EQ(r.derived.rows[0].back(), "no");
  EXPECT_NE(r.verdict, verdict_kind::not_measured) << r.verdict_text;
}

}  // namespace
}  // namespace crew::lab
