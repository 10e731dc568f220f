// The JSON form of the advice (schema crew-advise/1); the rules are crew::recommend.
#include "advise/rules.hpp"

namespace crew::lab {

nlohmann::json to_json(const workload_profile& p) {
  nlohmann::json j = {
      {"description", p.description},       {"runs", p.runs},
      {"wall_seconds", p.wall_seconds},     {"cpu_seconds", p.cpu_seconds},
      {"cpu_fraction", p.cpu_fraction()},   {"max_wall_seconds", p.max_wall_seconds},
      {"peak_rss_bytes", p.peak_rss_bytes}, {"arg_bytes", p.arg_bytes},
      {"result_bytes", p.result_bytes},     {"crashes", p.crashes},
      {"crash_detail", p.crash_detail},     {"timeouts", p.timeouts}};
  j["tasks"] = p.tasks ? nlohmann::json(*p.tasks) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json to_json(const machine_costs& m) {
  return {{"source", m.source},
          {"cores", m.cores},
          {"memory_bytes", m.memory_bytes},
          {"thread_start_seconds", m.thread_start_seconds},
          {"process_start_seconds", m.process_start_seconds},
          {"thread_handoff_seconds", m.thread_handoff_seconds},
          {"process_handoff_seconds", m.process_handoff_seconds},
          {"copy_bandwidth", m.copy_bandwidth},
          {"shared_bandwidth", m.shared_bandwidth},
          {"idle_thread_bytes", m.idle_thread_bytes},
          {"idle_process_bytes", m.idle_process_bytes},
          {"assumed", m.assumed}};
}

nlohmann::json to_json(const recommendation& r) {
  return {{"model", to_string(r.model)},
          {"workers", r.workers},
          {"threads_per_worker", r.threads_per_worker},
          {"chunk", r.chunk},
          {"timeout_seconds", r.timeout_seconds},
          {"overhead_seconds", r.overhead_seconds},
          {"predicted_speedup", r.predicted_speedup},
          {"workload_kind", r.workload_kind},
          {"reasons", r.reasons},
          {"caveats", r.caveats}};
}

}  // namespace crew::lab
