// experiments/registry.hpp — one factory per experiment; registry() lists them in run order.
#pragma once

#include "lab/experiment.hpp"

namespace crew::lab {

experiment creation_experiment();
experiment switching_experiment();
experiment communication_experiment();
experiment memory_experiment();
experiment cpu_scaling_experiment();
experiment io_scaling_experiment();
experiment data_sharing_experiment();
experiment fault_isolation_experiment();
experiment peers_experiment();

}  // namespace crew::lab
