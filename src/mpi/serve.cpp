// The serving side of an MPI pool: every rank but rank 0 runs this loop from its mpi_session
// constructor. One thread (the rank's main thread) makes every MPI call. With one task thread
// the tasks run on that thread too, and their results go back a batch at a time; with more, the
// tasks run on a crew::thread_pool and the main thread collects what they finished.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include <cxxabi.h>

#include "crew/codec.hpp"
#include "crew/detail/registry.hpp"
#include "crew/exception.hpp"
#include "crew/thread_pool.hpp"
#include "mpi/protocol.hpp"
#include "mpi/runtime.hpp"

namespace crew::detail::mpi {

namespace {

using clock = std::chrono::steady_clock;

// Results are held back at most this long so that several travel in one message.
constexpr auto flush_interval = std::chrono::microseconds{200};
constexpr std::size_t flush_bytes = std::size_t{64} << 10;
// A result larger than this travels as its own message.
constexpr std::size_t separate_result_bytes = std::size_t{32} << 10;

// --- a fatal signal inside a task: say which rank and task before the job goes down -----------

// Written by the thread that runs a task, before it runs it; read by the signal handler, which
// runs on the same thread (a fault is delivered to the thread that caused it).
thread_local std::string_view running_task;
int serving_rank = -1;

void write_all(const char* text, std::size_t size) noexcept {
  while (size > 0) {
    const ssize_t n = write(STDERR_FILENO, text, size);
    if (n <= 0) return;
    text += n;
    size -= static_cast<std::size_t>(n);
  }
}

void on_fatal_signal(int signal) {
  // Async-signal-safe only: write(2) of fixed text, then die of the same signal.
  char line[512];
  int n = std::snprintf(line, sizeof line, "crew mpi_pool: rank %d (pid %d) ", serving_rank,
                        static_cast<int>(getpid()));
  write_all(line, static_cast<std::size_t>(std::max(n, 0)));
  const std::string_view name = running_task;
  if (!name.empty()) {
    write_all("died running task ", 18);
    write_all(name.data(), std::min<std::size_t>(name.size(), 200));
  } else {
    write_all("died outside a task", 19);
  }
  n = std::snprintf(line, sizeof line,
                    " (signal %d); Open MPI will now end the job (see docs/mpi.md)\n", signal);
  write_all(line, static_cast<std::size_t>(std::max(n, 0)));
  ::signal(signal, SIG_DFL);
  raise(signal);
}

void install_fatal_handlers(int rank) {
  serving_rank = rank;
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(s, &on_fatal_signal);
}

// --- encoding results -----------------------------------------------------------------------

/// One result, encoded where it will travel: in the batch, or in its own buffer when large.
struct result_batch {
  std::vector<std::byte> bytes;                 // [result_header, payload]...
  std::deque<std::vector<std::byte>> separate;  // payloads flagged separate, in order
  std::size_t count = 0;
  clock::time_point first{};
};

class batch_sink final : public byte_sink {
 public:
  explicit batch_sink(result_batch& batch) noexcept : batch_(batch) {}

  void begin(std::uint64_t seq) {
    header_at_ = batch_.bytes.size();
    batch_.bytes.resize(header_at_ + sizeof(result_header));
    header_ = {seq, 0, result_status::ok, 0};
    large_ = false;
  }
  std::span<std::byte> acquire(std::size_t bytes) override {
    header_.size = bytes;
    if (bytes > separate_result_bytes) {
      large_ = true;
      header_.flags = flag_separate;
      auto& out = batch_.separate.emplace_back(bytes);
      return out;
    }
    batch_.bytes.resize(header_at_ + sizeof(result_header) + bytes);
    return std::span<std::byte>{batch_.bytes}.subspan(header_at_ + sizeof(result_header), bytes);
  }
  void finish() { commit(); }
  void fail(result_status status, const std::vector<std::byte>& payload) {
    if (large_) batch_.separate.pop_back();
    batch_.bytes.resize(header_at_ + sizeof(result_header));
    header_ = {header_.seq, payload.size(), status, 0};
    batch_.bytes.insert(batch_.bytes.end(), payload.begin(), payload.end());
    commit();
  }

 private:
  void commit() {
    std::memcpy(batch_.bytes.data() + header_at_, &header_, sizeof header_);
    if (batch_.count++ == 0) batch_.first = clock::now();
  }
  result_batch& batch_;
  std::size_t header_at_ = 0;
  result_header header_{};
  bool large_ = false;
};

/// Runs one task and appends its result (value, exception or refusal) to `sink`'s batch.
void run_task(const request_header& request, std::span<const std::byte> args, batch_sink& sink) {
  sink.begin(request.seq);
  const task_entry* entry = find_task(request.task_id);
  if (entry == nullptr) {
    sink.fail(result_status::bad_request,
              codec::encode(std::string{"the rank has no task with this id"}));
    return;
  }
  running_task = entry->name;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // visible to the handler before the task
  try {
    entry->invoke(args, sink);
    sink.finish();
  } catch (const serialization_error& e) {
    sink.fail(result_status::bad_request, codec::encode(std::string{e.what()}));
  } catch (...) {
    sink.fail(result_status::exception, encode_exception(std::current_exception()));
  }
  running_task = {};
}

/// A task received and not yet run (its arguments own their bytes).
struct received_task {
  request_header header;
  std::shared_ptr<std::vector<std::byte>> message;  // the batch it sits in
  std::span<const std::byte> inline_args;
  std::vector<std::byte> separate_args;
};

class server {
 public:
  server(MPI_Comm comm, int root, bool spawned) : comm_(comm), root_(root), spawned_(spawned) {}

  /// Whether MPI may be finalised once run() returned.
  [[nodiscard]] bool finalize() const noexcept { return finalize_; }

  void run() {
    backoff idle;
    for (;;) {
      bool busy = false;
      int flag = 0;
      MPI_Status status;
      MPI_Message handle = MPI_MESSAGE_NULL;
      check(MPI_Improbe(root_, MPI_ANY_TAG, comm_, &flag, &handle, &status), "MPI_Improbe");
      if (flag != 0) {
        busy = true;
        if (status.MPI_TAG == tag::control) {
          if (!on_control(handle)) return;
        } else if (status.MPI_TAG == tag::tasks) {
          on_tasks(handle, status);
        } else {
          throw std::runtime_error("crew mpi_pool: unexpected message tag " +
                                   std::to_string(status.MPI_TAG));
        }
      }
      if (threads_ != nullptr) busy |= collect_threaded();
      busy |= flush(false);
      busy |= test_sends();
      if (busy) {
        idle.reset();
      } else if (threads_ != nullptr && idle.sleeping()) {
        // Task threads wake us as soon as they finish something.
        std::unique_lock lock{done_mu_};
        done_cv_.wait_for(lock, idle.next_sleep(), [this] { return !done_.empty(); });
        idle.count_sleep();
      } else {
        idle.pause();
      }
    }
  }

 private:
  // Returns false when the loop must end.
  bool on_control(MPI_Message& handle) {
    control_message message{};
    check(MPI_Mrecv(&message, sizeof message, MPI_BYTE, &handle, MPI_STATUS_IGNORE), "MPI_Mrecv");
    switch (message.op) {
      case control_op::open: {
        const std::size_t threads = std::max<std::uint32_t>(message.threads, 1);
        if (threads > 1) {
          threads_ = std::make_unique<thread_pool>(threads);
        }
        control_message hello{};
        hello.op = control_op::hello;
        hello.threads = static_cast<std::uint32_t>(threads);
        hello.pid = static_cast<std::int32_t>(getpid());
        MPI_Comm_rank(MPI_COMM_WORLD, &hello.world_rank);
        gethostname(hello.host, sizeof hello.host - 1);
        check(MPI_Send(&hello, sizeof hello, MPI_BYTE, root_, tag::control, comm_), "MPI_Send");
        return true;
      }
      case control_op::close: {
        // Rank 0 closes a pool only when nothing is in flight; finish anyway, then answer.
        if (threads_ != nullptr) {
          while (running_ > 0) {
            collect_threaded();
            std::this_thread::yield();
          }
          threads_.reset();
        }
        flush(true);
        wait_sends();
        control_message closed{};
        closed.op = control_op::closed;
        check(MPI_Send(&closed, sizeof closed, MPI_BYTE, root_, tag::control, comm_), "MPI_Send");
        return !spawned_;
      }
      case control_op::end:
        finalize_ = (message.threads & flag_skip_finalize) == 0;
        return false;
      default:
        throw std::runtime_error("crew mpi_pool: unknown control message");
    }
  }

  void on_tasks(MPI_Message& handle, const MPI_Status& probed) {
    int bytes = 0;
    MPI_Get_count(&probed, MPI_BYTE, &bytes);
    auto message = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(bytes));
    check(MPI_Mrecv(message->data(), bytes, MPI_BYTE, &handle, MPI_STATUS_IGNORE), "MPI_Mrecv");
    std::span<const std::byte> rest{*message};
    batch_sink sink{batch_};
    while (!rest.empty()) {
      received_task task;
      task.message = message;
      if (rest.size() < sizeof(request_header)) throw std::runtime_error("crew: truncated batch");
      std::memcpy(&task.header, rest.data(), sizeof task.header);
      rest = rest.subspan(sizeof task.header);
      std::span<const std::byte> args;
      if ((task.header.flags & flag_separate) != 0) {
        if (task.header.size > static_cast<std::uint64_t>(INT32_MAX)) {
          throw std::runtime_error("crew: arguments too large for one MPI message");
        }
        task.separate_args.resize(task.header.size);
        check(MPI_Recv(task.separate_args.data(), static_cast<int>(task.header.size), MPI_BYTE,
                       root_, tag::large_args, comm_, MPI_STATUS_IGNORE),
              "MPI_Recv");
        args = task.separate_args;
      } else {
        if (task.header.size > rest.size()) throw std::runtime_error("crew: truncated batch");
        args = rest.first(task.header.size);
        rest = rest.subspan(task.header.size);
      }
      if (threads_ == nullptr) {
        run_task(task.header, args, sink);
        flush(false);
      } else {
        task.inline_args = args;
        dispatch(std::move(task));
      }
    }
    // The batch is done: send what it produced now rather than after the flush interval.
    if (threads_ == nullptr) flush(true);
  }

  // --- threads_per_rank > 1 ---

  struct finished {
    result_batch batch;  // holds exactly one result
  };

  void dispatch(received_task task) {
    ++running_;
    threads_->detach([this, task = std::move(task)]() mutable {
      finished done;
      batch_sink sink{done.batch};
      std::span<const std::byte> args =
          task.separate_args.empty() && (task.header.flags & flag_separate) == 0
              ? task.inline_args
              : std::span<const std::byte>{task.separate_args};
      run_task(task.header, args, sink);
      task.message.reset();
      {
        std::lock_guard lock{done_mu_};
        done_.push_back(std::move(done));
      }
      done_cv_.notify_one();
    });
  }

  bool collect_threaded() {
    std::deque<finished> ready;
    {
      std::lock_guard lock{done_mu_};
      if (done_.empty()) return false;
      ready.swap(done_);
    }
    for (finished& one : ready) {
      --running_;
      if (batch_.count++ == 0) batch_.first = clock::now();
      batch_.bytes.insert(batch_.bytes.end(), one.batch.bytes.begin(), one.batch.bytes.end());
      for (auto& payload : one.batch.separate) batch_.separate.push_back(std::move(payload));
    }
    flush(running_ == 0);
    return true;
  }

  // --- sending results ---

  /// Sends the pending results when forced, large enough, or held long enough.
  bool flush(bool force) {
    if (batch_.count == 0) return false;
    if (!force && batch_.bytes.size() < flush_bytes && batch_.separate.empty() &&
        clock::now() - batch_.first < flush_interval) {
      return false;
    }
    send(std::move(batch_.bytes), tag::results);
    // Large results follow their batch, in order. Wait for them: the buffers are big, and the
    // next task could otherwise hold up their transfer on transports that need the sender.
    while (!batch_.separate.empty()) {
      send(std::move(batch_.separate.front()), tag::large_result);
      batch_.separate.pop_front();
      wait_sends();
    }
    batch_ = result_batch{};
    return true;
  }

  void send(std::vector<std::byte> bytes, int tag) {
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
      throw std::runtime_error("crew: a result is too large for one MPI message");
    }
    auto& out = sends_.emplace_back();
    out.bytes = std::move(bytes);
    check(MPI_Isend(out.bytes.data(), static_cast<int>(out.bytes.size()), MPI_BYTE, root_, tag,
                    comm_, &out.request),
          "MPI_Isend");
  }

  bool test_sends() {
    bool any = false;
    while (!sends_.empty()) {
      int done = 0;
      check(MPI_Test(&sends_.front().request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done == 0) break;
      sends_.pop_front();
      any = true;
    }
    return any;
  }

  void wait_sends() {
    while (!sends_.empty()) {
      check(MPI_Wait(&sends_.front().request, MPI_STATUS_IGNORE), "MPI_Wait");
      sends_.pop_front();
    }
  }

  struct pending_send {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<std::byte> bytes;
  };

  MPI_Comm comm_;
  int root_;
  bool spawned_;
  bool finalize_ = true;
  result_batch batch_;
  std::deque<pending_send> sends_;
  std::unique_ptr<thread_pool> threads_;
  std::size_t running_ = 0;
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::deque<finished> done_;
};

}  // namespace

bool serve(MPI_Comm comm, int root, bool spawned) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  install_fatal_handlers(rank);
  server loop{comm, root, spawned};
  loop.run();
  return loop.finalize();
}

}  // namespace crew::detail::mpi
