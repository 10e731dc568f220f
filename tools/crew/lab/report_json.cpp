#include <cmath>

#include "lab/report.hpp"

namespace crew::lab {
namespace {

// JSON has no NaN or infinity; a failed figure is null.
nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json numbers(const std::vector<double>& v) {
  auto a = nlohmann::json::array();
  for (double x : v) a.push_back(number(x));
  return a;
}

nlohmann::json to_json(const table& t) {
  return {{"columns", t.columns}, {"rows", t.rows}};
}

}  // namespace

nlohmann::json to_json(const machine_info& m, const config& cfg,
                       const std::vector<result>& results) {
  nlohmann::json j;
  j["schema"] = bench_schema;
  j["machine"] = {{"cpu_model", m.cpu_model},
                  {"cores", m.cores},
                  {"online_cpus", m.online_cpus},
                  {"kernel", m.kernel},
                  {"hostname", m.hostname},
                  {"memory_bytes", m.memory_bytes},
                  {"compiler", m.compiler},
                  {"crew_version", m.crew_version},
                  {"load_average", m.load_average},
                  {"sockets", m.sockets},
                  {"physical_cores", m.physical_cores},
                  {"smt_siblings", m.smt_siblings},
                  {"numa_nodes", m.numa_nodes},
                  {"cgroup_cpu_quota", m.cgroup_cpu_quota > 0 ? nlohmann::json(m.cgroup_cpu_quota)
                                                              : nlohmann::json(nullptr)}};
  j["config"] = {{"quick", cfg.quick},
                 {"repeat", cfg.repeat},
                 {"warmup", cfg.warmup},
                 {"workers", cfg.workers}};
  auto exps = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json e;
    e["id"] = r.id;
    e["title"] = r.title;
    e["claim"] = r.claim;
    e["method"] = r.method;
    e["measured"] = r.measured;
    e["verdict"] = to_string(r.verdict);
    e["verdict_text"] = r.verdict_text;
    e["seconds"] = number(r.seconds);
    e["notes"] = r.notes;
    e["derived"] = to_json(r.derived);
    auto ss = nlohmann::json::array();
    for (const auto& s : r.data) {
      nlohmann::json o;
      o["name"] = s.name;
      o["group"] = s.group;
      o["x"] = number(s.x);
      o["unit"] = s.unit;
      o["state"] = to_string(s.state);
      o["note"] = s.note;
      if (!s.mechanism.empty()) o["mechanism"] = s.mechanism;
      o["warmup"] = numbers(s.warmup);
      o["samples"] = numbers(s.samples);
      if (s.has_data()) {
        const auto st = s.stats();
        o["summary"] = {{"n", st.n},
                        {"median", number(st.median)},
                        {"mean", number(st.mean)},
                        {"min", number(st.min)},
                        {"max", number(st.max)},
                        {"p10", number(st.p10)},
                        {"p25", number(st.p25)},
                        {"p75", number(st.p75)},
                        {"p90", number(st.p90)},
                        {"iqr", number(st.iqr)},
                        {"mad", number(st.mad)}};
      } else {
        o["summary"] = nullptr;
      }
      ss.push_back(std::move(o));
    }
    e["series"] = std::move(ss);
    exps.push_back(std::move(e));
  }
  j["experiments"] = std::move(exps);
  return j;
}

}  // namespace crew::lab
