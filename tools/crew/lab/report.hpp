// lab/report.hpp — the three views of a bench run: aligned text tables, JSON, and a
// self-contained HTML page. All are pure functions of the results; thread-safe; no I/O except
// into the stream given.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/experiment.hpp"
#include "lab/machine.hpp"

namespace crew::lab {

/// The JSON schema identifier written into every report; bump on incompatible change.
inline constexpr const char* bench_schema = "crew-bench/1";

/// Columns padded to line up in a terminal (widths counted in code points, not bytes).
void print_aligned(std::ostream& out, const table& t);

/// One experiment: claim, method, a row per series, the derived figures and the verdict.
void print_result(std::ostream& out, const result& r);

/// How the series of `r` hand over and wait, one line per distinct mechanism with the groups
/// (or series) that use it, in order of first use; empty when no series names one.
std::vector<std::string> mechanism_lines(const result& r);

/// The summary: claim → measured here → verdict, one row per experiment.
void print_summary(std::ostream& out, const std::vector<result>& results);

/// Everything, every raw sample included (schema: docs/bench.md).
nlohmann::json to_json(const machine_info& m, const config& cfg,
                       const std::vector<result>& results);

/// One HTML document with inline CSS and inline SVG charts: no script, no network.
/// Each chart is `<svg class="chart" data-points="N">` holding N elements of class "pt" that
/// carry data-series, data-x and data-y, so a checker can count what was drawn.
std::string render_html(const machine_info& m, const config& cfg,
                        const std::vector<result>& results);

/// The table print_result shows for the series of `r`.
table series_table(const result& r);

}  // namespace crew::lab
