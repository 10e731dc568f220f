// main() of every crew MPI test program: ranks 1..N-1 serve inside the session's constructor;
// rank 0 runs the test cases and its exit code becomes mpirun's.
#include <gtest/gtest.h>

#include "crew/mpi_pool.hpp"

int main(int argc, char** argv) {
  crew::mpi_session session{argc, argv};
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
