// advise/costs.hpp — this machine's costs for the advice rules: read from a `crew bench --json`
// report, or measured by a short calibration (crew advise prints how long it took). Not
// thread-safe: calibration forks.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "advise/rules.hpp"

namespace crew::lab {

/// Costs from a bench report. Figures the report lacks (e.g. it ran with --only) keep their
/// defaults and are listed in `assumed`. Throws advise_error if the JSON is not a crew bench
/// report.
machine_costs costs_from_bench(const nlohmann::json& report, const std::string& source);

/// Measures thread and process start-up and hand-off, copy bandwidth and memory per idle
/// worker on this machine, briefly.
machine_costs calibrate_costs();

}  // namespace crew::lab
