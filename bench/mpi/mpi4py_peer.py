"""The same no-op task on mpi4py.futures.MPIPoolExecutor, for bench/mpi/run.sh.

Run as `mpirun -n 3 python3 -m mpi4py.futures mpi4py_peer.py` (static mode: the job's other ranks
are the pool's workers, like crew::mpi_pool). Prints one "name median min max" line per figure:
  mpi4py_roundtrip_us       executor.submit(noop, i).result(), per task
  mpi4py_throughput_per_s   N tasks submitted at once, then collected
Each figure is measured `repeats` times after a warm-up.
"""
import statistics
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def noop(x):
    return x


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    roundtrips = int(args.get("--roundtrips", 2000))
    tasks = int(args.get("--tasks", 20000))
    repeats = int(args.get("--repeats", 3))
    with MPIPoolExecutor() as executor:
        for i in range(200):  # warm-up
            executor.submit(noop, i).result()
        roundtrip = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(roundtrips):
                assert executor.submit(noop, i).result() == i
            roundtrip.append((time.perf_counter() - start) * 1e6 / roundtrips)
        throughput = []
        for _ in range(repeats):
            start = time.perf_counter()
            futures = [executor.submit(noop, i) for i in range(tasks)]
            total = sum(f.result() for f in futures)
            assert total == tasks * (tasks - 1) // 2
            throughput.append(tasks / (time.perf_counter() - start))

    def line(name, values, digits):
        figures = (statistics.median(values), min(values), max(values))
        print(name, " ".join(f"{v:.{digits}f}" for v in figures))

    line("mpi4py_roundtrip_us", roundtrip, 3)
    line("mpi4py_throughput_per_s", throughput, 0)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
