// crew/mpi_pool.hpp — the crew API on the ranks of an MPI job.
//
// The program runs SPMD under `mpirun -n N`: every rank starts the same binary, and a
// crew::mpi_session at the top of main() initialises MPI. On rank 0 the constructor returns and
// the program goes on as usual; every other rank stays inside the constructor, serves the tasks
// rank 0 sends, and ends the process (MPI_Finalize, then std::exit(0)) when rank 0's session
// ends. So code after the session line runs on rank 0 only:
//
//   int main(int argc, char** argv) {
//     crew::mpi_session session{argc, argv};                 // ranks 1..N-1 serve here
//     crew::mpi_pool pool{{.threads_per_rank = 1}};
//     auto squares = crew::map<&square>(pool, inputs);      // the same calls as any pool
//   }
//
// An mpi_pool accepts the same calls as thread_pool and process_pool (crew::pool in
// crew/executor.hpp: `submit<&fn>(args...)`, `submit(f, args...)` for a stateless f, detach,
// every algorithm in crew/algorithm.hpp, as_completed, when_all); tasks are functions known at
// compile time or stateless callables, looked up in the registry every rank built at start-up, with
// arguments and results in crew's one codec (crew/codec.hpp). Small tasks travel several to a
// message; large arguments and results travel as MPI messages of their own, sent from and received
// into the encoded buffer itself. With threads_per_rank > 1 each rank runs its tasks on a crew
// thread_pool (hybrid MPI + threads). docs/mpi.md covers running on a cluster.
//
// Failures: an exception in a task arrives as on a process pool: get() rethrows a rebuilt
// exception of the same type when it is standard or registered (crew/exception.hpp), result()
// gives task_error{exception} with the remote type name and what(). A rank that dies ends the whole
// job under Open MPI's default settings (mpirun kills every rank and exits non-zero); crew prints
// which rank died running which task when the death was a signal it could catch. Under `mpirun
// --enable-recovery` rank 0 survives: crew notices a dead rank on rank 0's host, fails every task
// it held with error_kind::crashed and goes on with the other ranks; the session then ends without
// MPI_Finalize, which would wait for the dead rank (docs/mpi.md).
//
// Thread-safety: every public member of mpi_pool may be called from any thread of rank 0. All MPI
// calls are made under one lock, so MPI needs only MPI_THREAD_SERIALIZED. Blocking: submit never
// blocks on the ranks (with max_queued and on_full = block it waits for room in rank 0's queue);
// wait_idle, shutdown and the destructor block until the work they wait for is done; a thread
// that waits on a future drives the MPI traffic itself meanwhile (no hand-off to another thread
// on the round trip). Lifetime: the session must outlive the pool (if it does
// not, the session drains the pool when it ends); futures may outlive both. One mpi_pool exists
// at a time (a second one throws std::logic_error): the ranks serve one pool at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/call.hpp"
#include "crew/codec.hpp"
#include "crew/detail/pool_calls.hpp"
#include "crew/detail/registry.hpp"
#include "crew/detail/remote_call.hpp"
#include "crew/detail/shared_state.hpp"
#include "crew/error.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"

namespace crew {

/// Initialises MPI (MPI_THREAD_SERIALIZED at least) for the program's lifetime. Construct it once,
/// at the top of main(), before any other thread starts. On rank 0 it returns; on every other
/// rank it serves tasks until rank 0's session ends, then finalises MPI and calls std::exit(0):
/// it never returns there. A process started by MPI_Comm_spawn (mpi_pool_options::spawn) serves
/// the same way. When MPI was already initialised by the program (with enough thread support),
/// the session uses it and leaves MPI_Finalize on rank 0 to the program (the serving ranks,
/// which never return to the program, finalise it themselves).
///
/// Not thread-safe (construct and destroy it on the main thread). The destructor (rank 0) drains
/// a pool that is still alive, tells every rank to end, and finalises MPI.
class mpi_session {
 public:
  /// MPI_Init_thread with the program's arguments (Open MPI reads none it needs: both are kept).
  mpi_session(int& argc, char**& argv);
  /// MPI_Init_thread without arguments.
  mpi_session();
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session();

  /// This process's rank in MPI_COMM_WORLD (always 0 where user code runs) and the job's size.
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  /// The live session, or null.
  [[nodiscard]] static mpi_session* current() noexcept;

 private:
  void start(int* argc, char*** argv);
  int rank_ = 0;
  int size_ = 1;
  bool owns_mpi_ = false;
};

struct mpi_pool_options {
  /// Threads that run tasks on each rank: 1 runs them on the rank's MPI thread itself; more runs
  /// them on a crew::thread_pool of this many threads. At least 1.
  std::size_t threads_per_rank = 1;
  /// Ranks that serve the pool: 0 means every rank of the job but rank 0. More than there are
  /// throws std::invalid_argument.
  std::size_t ranks = 0;
  /// Extra ranks started with MPI_Comm_spawn (same binary, same arguments) for this pool, and
  /// ended with it. 0: none.
  std::size_t spawn = 0;
  /// Tasks sent ahead to each task thread, so that no thread waits for rank 0 between tasks.
  std::size_t pipeline_depth = 16;
  /// At most this many tasks, and about this many bytes, travel in one message.
  std::size_t batch_tasks = 64;
  std::size_t batch_bytes = std::size_t{64} << 10;
  /// Encoded arguments or results larger than this travel as an MPI message of their own,
  /// straight from and into their buffer.
  std::size_t large_bytes = std::size_t{32} << 10;
  /// How long the constructor waits for every rank to answer.
  std::chrono::milliseconds start_timeout{60'000};
  /// At most this many tasks wait on rank 0 to be sent (0: no bound). A submission that finds
  /// the queue full waits for room (on_full = block) or fails with error_kind::queue_full
  /// (on_full = fail). One made while the pool delivers a result (a continuation) never waits.
  std::size_t max_queued = 0;
  queue_full on_full = queue_full::block;
};

/// pool_stats (crew/executor.hpp, the same on every pool) and the MPI pool's own. Here
/// `workers` is ranks × threads_per_rank, `queued` is tasks not yet sent to a rank, `running`
/// tasks sent to a rank with no result yet.
struct mpi_pool_stats : pool_stats {
  std::size_t ranks = 0;          ///< ranks serving the pool (lost ones excluded)
  std::size_t lost_ranks = 0;     ///< ranks found dead (only with mpirun --enable-recovery)
  std::size_t messages_sent = 0;  ///< task messages rank 0 sent (batches and large arguments)
  std::size_t messages_received = 0;
  /// Futures failed timed_out by a per-call timeout (with(...)); the rank ran the task on.
  std::size_t timed_out = 0;
  std::size_t rejected = 0;  ///< submissions refused with queue_full (on_full = fail)
  std::size_t retried = 0;   ///< tasks sent again after their rank died (per-call retries)
};

namespace detail {

class mpi_pool_core;

/// Turns a rank's encoded result into the future's value.
using mpi_result_decoder = result_decoder;

/// A task's state on an MPI pool. It stays `pending` until its result arrives, so that a thread
/// waiting on it drives the pool's MPI traffic itself (run_inline) instead of sleeping until
/// another thread does; cancel() then always wins: the task is dropped if it was not sent yet,
/// and its result is discarded if it was.
template <class R>
class mpi_state final : public shared_state<R> {
 public:
  explicit mpi_state(std::shared_ptr<mpi_pool_core> core) noexcept : core_(std::move(core)) {}
  /// Set by the submitting thread once the pool queued the task (false: refused, or its
  /// arguments could not be encoded).
  bool accepted = false;

 private:
  bool run_inline() noexcept override;
  std::shared_ptr<mpi_pool_core> core_;
};

bool mpi_drive_until_ready(mpi_pool_core& core, const state_base& state) noexcept;

template <class R>
bool mpi_state<R>::run_inline() noexcept {
  return mpi_drive_until_ready(*core_, *this);
}

struct mpi_submission {
  const task_entry* entry;
  state_base* state;  // the pool takes a reference
  mpi_result_decoder decode;
  std::vector<std::byte> args;
  const call_options* call = nullptr;  // per-call options, if any
};

}  // namespace detail

class mpi_pool : public detail::remote_calls<mpi_pool> {
 public:
  /// Opens the pool on the session's ranks (and spawns options.spawn more). Blocks until every
  /// rank answered. Throws std::logic_error without a live mpi_session on rank 0, or while
  /// another mpi_pool is alive; std::invalid_argument for bad options; std::runtime_error when
  /// no rank can serve (a job of one process, and spawn == 0) or a rank does not answer in time.
  mpi_pool() : mpi_pool(mpi_pool_options{}) {}
  explicit mpi_pool(mpi_pool_options options);
  mpi_pool(const mpi_pool&) = delete;
  mpi_pool& operator=(const mpi_pool&) = delete;
  /// Drains (like shutdown(drain)) unless shutdown() was called; the ranks go back to waiting
  /// for the next pool (spawned ranks end).
  ~mpi_pool();

  /// Runs Fn(args...) on a rank. Arguments are converted to Fn's parameter types and encoded now,
  /// so the caller may change or free them at once. Thread-safe; never blocks on the ranks (see
  /// max_queued for the queue's bound). After shutdown the future holds pool_closed.
  template <auto Fn, class... A>
  auto submit(A&&... args) -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
    return submit_call<Fn>(nullptr, std::forward<A>(args)...);
  }

  /// Also, from detail::remote_calls (crew/detail/pool_calls.hpp): submit(f, args...) and
  /// detach(f, args...) for a stateless f (each rank builds its own F{}; a callable with state
  /// does not compile, with a message saying what to write instead); detach<&fn>(args...),
  /// without a future (its failure counted in stats().failed; false, and the task never runs,
  /// when the pool refused it: closed, broken or full with on_full = fail, or arguments that
  /// cannot be encoded); and with(options), per-call options (crew/call.hpp):
  ///  - timeout: a task with one is sent only to a rank with an idle task thread (never queued
  ///    behind another task there; tasks behind it on rank 0 wait too), and its time counts
  ///    from that moment. A rank cannot be stopped from rank 0: at the deadline the future fails
  ///    timed_out (the message says the task runs on), the rank runs the task to its end, and
  ///    its result is dropped; stats().timed_out counts these. Zero or less: the task never
  ///    runs, its future holds timed_out at once.
  ///  - name: replaces the function's name in the task's errors.
  ///  - retries: when the task's rank dies while it holds the task (only survivable under
  ///    `mpirun --enable-recovery`), the task is sent to another rank up to this many times
  ///    before its future fails crashed. The pool keeps a copy of its arguments meanwhile.
  using remote_calls::detach;
  using remote_calls::submit;

  /// Blocks until nothing is queued or running. Thread-safe.
  void wait_idle();

  /// Stops accepting tasks (later submits get pool_closed). drain: waits for every queued and
  /// running task; cancel_pending: queued tasks end as cancelled, tasks already sent to a rank
  /// finish. Then the ranks close the pool. Blocks. Idempotent; thread-safe.
  void shutdown(shutdown_mode mode = shutdown_mode::drain);

  /// Whether shutdown() has begun (submissions are refused with pool_closed). Never blocks.
  [[nodiscard]] bool closed() const noexcept;

  /// Never blocks. Closes the pool as shutdown(mode) does and returns at once: later submissions
  /// get pool_closed; drain lets queued tasks run in the background, cancel_pending cancels them.
  /// The destructor (or shutdown) waits for what runs and closes the ranks.
  void close(shutdown_mode mode = shutdown_mode::drain);

  /// Never blocks. Closes the pool and cancels every task not yet sent to a rank (`cancelled`).
  /// A rank cannot be killed from rank 0 (without the MPI recovery extension): the tasks a rank
  /// holds run to their end and keep their results, as a thread pool's running tasks do;
  /// stop_report::still_running counts them, and the destructor waits for them.
  stop_report stop_now();

  [[nodiscard]] mpi_pool_stats stats() const;
  /// Tasks that run at once: serving ranks × threads_per_rank. Never blocks.
  [[nodiscard]] std::size_t concurrency() const noexcept;
  /// The MPI_COMM_WORLD ranks serving the pool (spawned ranks are listed as -1 - index).
  [[nodiscard]] std::vector<int> ranks() const;

 private:
  friend class detail::remote_calls<mpi_pool>;
  template <class R>
  static bool accepted(const future<R>& f) noexcept {
    return static_cast<const detail::mpi_state<R>*>(f.state())->accepted;
  }
  template <auto Fn, class... A>
  auto submit_call(const call_options* options, A&&... args)
      -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
    using R = std::decay_t<typename detail::task_traits<Fn>::result>;
    auto state = detail::make_state<detail::mpi_state<R>>(core_);
    detail::mpi_submission job{
        &detail::registered_task<Fn>, state.get(), &detail::decode_result<R>, {}, options};
    const auto allocate = [&job](std::size_t bytes) {
      job.args.resize(bytes);
      return std::span<std::byte>{job.args};
    };
    if (!detail::encode_arguments<Fn>(*state, options, allocate, std::forward<A>(args)...)) {
      return future<R>{std::move(state)};
    }
    state->accepted = enqueue(std::move(job));
    return future<R>{std::move(state)};
  }

  /// False when the pool refused the task (shut down, broken or full): its future holds why.
  bool enqueue(detail::mpi_submission job);
  task_error expired_call(const call_options& options, std::string function) noexcept;

  std::shared_ptr<detail::mpi_pool_core> core_;
};

static_assert(pool<mpi_pool>);

}  // namespace crew
