#!/usr/bin/env python3
"""Turns a `crew bench --json` report into the archived summary (docs/benchmarks/crew-bench.md)
and the README's table, so that every figure the README quotes comes from that report.

    python3 scripts/bench_summary.py REPORT.json SUMMARY.md [README.md]

README.md's table is replaced between the lines <!-- crew-bench-summary:begin --> and
<!-- crew-bench-summary:end -->; the rest of README.md is left as it is."""
import json
import sys

BEGIN = "<!-- crew-bench-summary:begin -->"
END = "<!-- crew-bench-summary:end -->"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def machine_line(j):
    m, c = j["machine"], j["config"]
    layout = []
    for key, one, many in (("sockets", "socket", "sockets"),
                           ("physical_cores", "physical core", "physical cores"),
                           ("numa_nodes", "NUMA node", "NUMA nodes")):
        n = m.get(key) or 0
        if n:
            layout.append(f"{n} {one if n == 1 else many}")
    smt = m.get("smt_siblings") or 0
    if smt:
        layout.append("no SMT" if smt == 1 else f"{smt} SMT threads per core")
    quota = m.get("cgroup_cpu_quota")
    layout.append(f"cgroup CPU quota {quota:g} CPUs" if quota else "no cgroup CPU quota")
    gib = m["memory_bytes"] / 2**30
    return (f"{m['cpu_model']}, {m['cores']} cores ({', '.join(layout)}), {gib:.1f} GiB, "
            f"{m['kernel']}, {m['compiler']}, crew {m['crew_version']}; "
            f"load average {m['load_average']:g} at the start; "
            f"{'quick' if c['quick'] else 'full'} run, {c['repeat']} measured runs per figure "
            f"after {c['warmup']} warm-up")


def table(j):
    rows = ["| experiment | measured here | verdict |", "| --- | --- | --- |"]
    for e in j["experiments"]:
        rows.append(f"| {cell(e['id'])} | {cell(e['measured'])} | {cell(e['verdict'])} |")
    return "\n".join(rows)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        j = json.load(f)
    if j.get("schema") != "crew-bench/1":
        sys.exit(f"{sys.argv[1]}: not a crew-bench/1 report")
    seconds = sum(e.get("seconds") or 0 for e in j["experiments"])
    summary = "\n".join([
        "# crew bench: the archived run",
        "",
        "Made by `bash scripts/bench-archive.sh` (which runs `crew bench --quick --json "
        "docs/benchmarks/crew-bench.json --html docs/benchmarks/crew-bench.html`, keeps its "
        "tables in `crew-bench.txt`, and writes this page and the README's table with "
        "`scripts/bench_summary.py`). Nothing here is edited by hand.",
        "",
        f"Machine: {machine_line(j)}. The experiments took {seconds:.0f} s.",
        "",
        table(j),
        "",
        "The same script runs `crew advise --runs 3 -- sleep 0.1` into "
        "[crew-advise.txt](crew-advise.txt) and [crew-advise.json](crew-advise.json): the "
        "calibration's duration (`calibration_seconds`) and the machine costs it measured.",
        "",
        "Every experiment's claim, method, medians, spreads and verdict text are in "
        "[crew-bench.txt](crew-bench.txt); every raw sample and the machine in "
        "[crew-bench.json](crew-bench.json); the charts in [crew-bench.html](crew-bench.html).",
        "",
    ])
    with open(sys.argv[2], "w") as f:
        f.write(summary)
    if len(sys.argv) == 4:
        with open(sys.argv[3]) as f:
            readme = f.read()
        if BEGIN not in readme or END not in readme:
            sys.exit(f"{sys.argv[3]}: no {BEGIN} ... {END} block")
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        block = (f"{BEGIN}\n"
                 f"From [docs/benchmarks/crew-bench.md](docs/benchmarks/crew-bench.md), the archived "
                 f"`crew bench --quick` run ({machine_line(j)}):\n\n{table(j)}\n{END}")
        with open(sys.argv[3], "w") as f:
            f.write(head + block + tail)


if __name__ == "__main__":
    main()
