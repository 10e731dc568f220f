// advise/rules.hpp — the advice rules as the CLI uses them. The rules themselves, and the
// profile/costs/recommendation structs, are the library's (crew/advise.hpp, one set of rules for
// `crew advise` and crew::advise<&fn>); this header brings them into crew::lab and adds their
// JSON form for `crew advise --json`. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "crew/advise.hpp"

namespace crew::lab {

using crew::execution_model;
using crew::machine_costs;
using crew::recommend;
using crew::recommendation;
using crew::to_string;
using crew::workload_profile;

nlohmann::json to_json(const workload_profile& p);
nlohmann::json to_json(const machine_costs& m);
nlohmann::json to_json(const recommendation& r);

}  // namespace crew::lab
