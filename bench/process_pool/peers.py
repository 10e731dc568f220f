#!/usr/bin/python3
"""CPython's process pools on the workloads of bench_process_pool; prints one JSON object.

Run by bench_process_pool (which passes the sizes), or by hand:
    /usr/bin/python3 peers.py --tasks-ppe 30000 --tasks-mp 100000 --reps 3 --startup-reps 15

Every pool has 2 workers and uses the fork start method (CPython's default on Linux up to 3.13,
and the one crew's process_pool uses by default). Per-task figures: submit N no-op tasks, then
wait for all of them (ProcessPoolExecutor: submit + concurrent.futures.wait; multiprocessing.Pool:
apply_async + get). A first, smaller round warms the pool up and is discarded; each repeat runs
on a fresh pool whose workers have already answered one task. Start-up: from the constructor to
the first .result() of a no-op task.
"""

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import platform
import statistics
import time


def noop():
    pass


def summary(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ppe_per_task(ctx, n):
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        # Warm-up: start both workers and run a few tasks (discarded).
        cf.wait([ex.submit(noop) for _ in range(max(200, n // 20))])
        start = time.perf_counter()
        futures = [ex.submit(noop) for _ in range(n)]
        cf.wait(futures)
        elapsed = time.perf_counter() - start
        for f in futures:
            f.result()  # surfaces any failure
    return elapsed / n


def mp_per_task(ctx, n):
    with ctx.Pool(2) as pool:
        for r in [pool.apply_async(noop) for _ in range(max(200, n // 20))]:
            r.get()
        start = time.perf_counter()
        results = [pool.apply_async(noop) for _ in range(n)]
        for r in results:
            r.get()
        elapsed = time.perf_counter() - start
    return elapsed / n


def ppe_startup(ctx):
    start = time.perf_counter()
    ex = cf.ProcessPoolExecutor(2, mp_context=ctx)
    ex.submit(noop).result()
    elapsed = time.perf_counter() - start
    ex.shutdown(wait=True)
    return elapsed


def mp_startup(ctx):
    start = time.perf_counter()
    pool = ctx.Pool(2)
    pool.apply_async(noop).get()
    elapsed = time.perf_counter() - start
    pool.close()
    pool.join()
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks-ppe", type=int, default=30000)
    parser.add_argument("--tasks-mp", type=int, default=100000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--startup-reps", type=int, default=15)
    args = parser.parse_args()

    ctx = multiprocessing.get_context("fork")
    out = {
        "python": platform.python_version(),
        "workers": 2,
        "start_method": "fork",
        "tasks_ppe": args.tasks_ppe,
        "tasks_mp": args.tasks_mp,
    }
    # Warm-up of the interpreter and the fork path (discarded).
    ppe_startup(ctx)
    mp_startup(ctx)
    ppe_s, mp_s, ppe_tasks, mp_tasks = [], [], [], []
    for _ in range(args.startup_reps):
        ppe_s.append(ppe_startup(ctx))
        mp_s.append(mp_startup(ctx))
    for _ in range(args.reps):
        ppe_tasks.append(ppe_per_task(ctx, args.tasks_ppe))
        mp_tasks.append(mp_per_task(ctx, args.tasks_mp))
    out["ppe_per_task_s"] = summary(ppe_tasks)
    out["mp_per_task_s"] = summary(mp_tasks)
    out["ppe_startup_s"] = summary(ppe_s)
    out["mp_startup_s"] = summary(mp_s)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
