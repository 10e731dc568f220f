#include "experiments/registry.hpp"

namespace crew::lab {

const std::vector<experiment>& registry() {
  static const std::vector<experiment> all = {
      creation_experiment(),     switching_experiment(),       communication_experiment(),
      memory_experiment(),       cpu_scaling_experiment(),     io_scaling_experiment(),
      data_sharing_experiment(), fault_isolation_experiment(), peers_experiment(),
  };
  return all;
}

}  // namespace crew::lab
