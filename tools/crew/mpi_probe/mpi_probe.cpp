// crew-mpi-probe — the MPI transport of `crew bench communication`. crew bench starts it as
//   mpirun -n 2 ... crew-mpi-probe BYTES ITERATIONS SAMPLES
// Rank 0 sends BYTES to rank 1 and waits for them back, ITERATIONS times per sample; it prints
// one line per sample: the mean round trip in seconds. Raw MPI_Send/MPI_Recv, the same echo as
// the other transports of that experiment.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 4 || size != 2) {
    if (rank == 0)
      std::fprintf(stderr, "usage: mpirun -n 2 crew-mpi-probe BYTES ITERATIONS SAMPLES\n");
    MPI_Finalize();
    return 2;
  }
  const long bytes = std::atol(argv[1]);
  const int iterations = std::atoi(argv[2]);
  const int samples = std::atoi(argv[3]);
  if (bytes <= 0 || bytes > (1L << 30) || iterations <= 0 || samples <= 0) {
    if (rank == 0) std::fprintf(stderr, "crew-mpi-probe: bad arguments\n");
    MPI_Finalize();
    return 2;
  }
  std::vector<char> buffer(static_cast<std::size_t>(bytes), 1);
  const int count = static_cast<int>(bytes);
  for (int s = 0; s < samples; ++s) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
      if (rank == 0) {
        MPI_Send(buffer.data(), count, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(buffer.data(), count, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(buffer.data(), count, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buffer.data(), count, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
      }
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (rank == 0) std::printf("%.9g\n", took.count() / iterations);
  }
  MPI_Finalize();
  return 0;
}
