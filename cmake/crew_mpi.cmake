# crew::mpi — the MPI pool, as a library of its own so that programs that do not use MPI never
# link it. Included from the top-level CMakeLists.txt after the `crew` target exists.
#
#   CREW_WITH_MPI   build crew::mpi (default: ON when an MPI with C++ bindings is found)
#
# Also defines crew_add_mpi_test(NAME <name> TARGET <target> [NPROC <n>] [TIMEOUT <s>]
# [MPIRUN_FLAGS ...] [ARGS ...] [LABELS ...]): a CTest test that runs the target under mpirun on
# this host. MPIRUN_FLAGS replaces the default transport flags (CREW_MPI_TRANSPORT_FLAGS).
find_package(MPI COMPONENTS CXX QUIET)
option(CREW_WITH_MPI "Build crew::mpi (mpi_pool)" ${MPI_CXX_FOUND})

if(CREW_WITH_MPI)
  if(NOT MPI_CXX_FOUND)
    message(FATAL_ERROR "CREW_WITH_MPI is ON but no MPI with C++ support was found "
                        "(Debian: apt-get install libopenmpi-dev openmpi-bin)")
  endif()
  file(GLOB crew_mpi_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/mpi/*.cpp)
  add_library(crew_mpi ${crew_mpi_sources})
  add_library(crew::mpi ALIAS crew_mpi)
  target_include_directories(crew_mpi PRIVATE ${PROJECT_SOURCE_DIR}/src)
  # The public header does not include <mpi.h>: MPI is a link dependency only.
  target_link_libraries(crew_mpi PUBLIC crew::crew PRIVATE MPI::MPI_CXX $<BUILD_INTERFACE:crew_warnings>)
  set_target_properties(crew_mpi PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME mpi)
  install(TARGETS crew_mpi EXPORT crewMpiTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT crewMpiTargets NAMESPACE crew:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)

  # Options every crew MPI test and benchmark passes to mpirun on one host: as root (containers,
  # CI) Open MPI refuses to start without --allow-run-as-root; --oversubscribe lets a test start
  # more ranks than there are cores. The shared-memory transport is all one job on one host
  # needs; ranks started with MPI_Comm_spawn also need TCP (here on the loopback interface only).
  set(CREW_MPIEXEC_FLAGS --oversubscribe --allow-run-as-root
      CACHE STRING "Flags crew's MPI tests pass to mpirun")
  set(CREW_MPI_TRANSPORT_FLAGS --mca btl self,vader
      CACHE STRING "Transport flags crew's MPI tests pass to mpirun")
  set(CREW_MPI_SPAWN_TRANSPORT_FLAGS --mca btl self,vader,tcp --mca btl_tcp_if_include lo
      CACHE STRING "Transport flags crew's MPI spawn test passes to mpirun")
  set(CREW_MPI_TEST_RANKS 3 CACHE STRING "Ranks crew's MPI tests start")

  function(crew_add_mpi_test)
    cmake_parse_arguments(arg "" "NAME;TARGET;NPROC;TIMEOUT" "MPIRUN_FLAGS;ARGS;LABELS" ${ARGN})
    if(NOT arg_MPIRUN_FLAGS)
      set(arg_MPIRUN_FLAGS ${CREW_MPI_TRANSPORT_FLAGS})
    endif()
    if(NOT arg_NPROC)
      set(arg_NPROC ${CREW_MPI_TEST_RANKS})
    endif()
    if(NOT arg_TIMEOUT)
      set(arg_TIMEOUT 300)
    endif()
    # mpirun's own --timeout ends every rank shortly before CTest's, so a hang is reported by
    # mpirun (with its diagnostics) rather than leaving ranks behind.
    math(EXPR mpirun_timeout "${arg_TIMEOUT} - 10")
    add_test(NAME ${arg_NAME}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${arg_NPROC} ${CREW_MPIEXEC_FLAGS}
              ${arg_MPIRUN_FLAGS} --timeout ${mpirun_timeout} ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${arg_TARGET}>
              ${MPIEXEC_POSTFLAGS} ${arg_ARGS})
    set(environment OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_ALLOW_RUN_AS_ROOT=1
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
    if(CREW_SANITIZE MATCHES "address")
      # Open MPI leaks at MPI_Finalize from plugins it has already unloaded, so LeakSanitizer
      # can neither symbolize nor suppress those reports; address and UB checks stay on.
      list(APPEND environment
           "ASAN_OPTIONS=detect_leaks=0:handle_segv=0:handle_abort=0:handle_sigbus=0")
    endif()
    if(CREW_SANITIZE MATCHES "thread")
      # Open MPI is not built with ThreadSanitizer: ignore what happens inside it.
      list(APPEND environment
           "TSAN_OPTIONS=halt_on_error=1:suppressions=${PROJECT_SOURCE_DIR}/tests/mpi/tsan.supp")
    endif()
    set_tests_properties(${arg_NAME} PROPERTIES TIMEOUT ${arg_TIMEOUT} LABELS "mpi;${arg_LABELS}"
      ENVIRONMENT "${environment}")
  endfunction()
endif()
