// crew::auto_pool: a recommendation turned into the pool it describes.
#include "crew/auto_pool.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "crew/detail/format.hpp"

namespace crew {
namespace {

constexpr unsigned max_threads_per_process = 64;  // hybrid_pool's own limit

std::chrono::milliseconds timeout_of(const recommendation& r, const auto_pool_options& o) {
  if (!o.apply_timeout || !(r.timeout_seconds > 0)) return std::chrono::milliseconds{0};
  return std::chrono::milliseconds{static_cast<long long>(std::ceil(r.timeout_seconds * 1e3))};
}

}  // namespace

auto_pool::auto_pool(recommendation choice, const auto_pool_options& options)
    : choice_(std::move(choice)) {
  if (choice_.workers == 0) throw std::invalid_argument("crew::auto_pool: 0 workers recommended");
  if (choice_.threads_per_worker == 0)
    throw std::invalid_argument("crew::auto_pool: 0 threads per worker recommended");

  if (choice_.model == execution_model::mpi) {
    choice_.reasons.push_back(
        "MPI was advised, but an auto_pool runs on this machine only: " +
        std::to_string(choice_.workers) +
        " worker process(es) instead, each task isolated; use crew::mpi_pool to spread the "
        "tasks over machines");
    choice_.model = execution_model::processes;
    choice_.threads_per_worker = 1;
  }
  if (choice_.model == execution_model::hybrid) {
    // The rules may say hybrid_pool is not built (costs that predate it); this library has it.
    std::erase_if(choice_.caveats, [](const std::string& c) {
      return c.starts_with("crew's hybrid_pool is not built");
    });
    if (choice_.threads_per_worker > max_threads_per_process) {
      choice_.reasons.push_back(
          "hybrid_pool runs at most " + std::to_string(max_threads_per_process) +
          " threads per process, not " + std::to_string(choice_.threads_per_worker));
      choice_.threads_per_worker = max_threads_per_process;
    }
  } else {
    choice_.threads_per_worker = 1;
  }

  const auto timeout = timeout_of(choice_, options);
  switch (choice_.model) {
    case execution_model::threads:
      pool_ = std::make_unique<thread_pool>(thread_pool_options{.workers = choice_.workers,
                                                                .max_queued = options.max_queued,
                                                                .on_full = options.on_full});
      choice_.reasons.push_back("running on a crew::thread_pool of " +
                                std::to_string(choice_.workers) + " threads");
      break;
    case execution_model::processes:
    case execution_model::mpi: {
      process_pool_options o;
      o.workers = choice_.workers;
      o.start = options.start;
      o.task_timeout = timeout;
      o.memory_limit = options.memory_limit;
      o.retries = options.retries;
      o.max_queued = options.max_queued;
      o.on_full = options.on_full;
      pool_ = std::make_unique<process_pool>(o);
      choice_.reasons.push_back("running on a crew::process_pool of " +
                                std::to_string(choice_.workers) + " worker processes");
      break;
    }
    case execution_model::hybrid: {
      hybrid_pool_options o;
      o.processes = choice_.workers;
      o.threads_per_process = choice_.threads_per_worker;
      o.start = options.start;
      o.task_timeout = timeout;
      o.memory_limit = options.memory_limit;
      o.retries = options.retries;
      o.max_queued = options.max_queued;
      o.on_full = options.on_full;
      pool_ = std::make_unique<hybrid_pool>(o);
      choice_.reasons.push_back("running on a crew::hybrid_pool of " +
                                std::to_string(choice_.workers) + " processes × " +
                                std::to_string(choice_.threads_per_worker) + " threads");
      break;
    }
  }
  if (timeout.count() > 0)
    choice_.reasons.push_back("a task running past " +
                              detail::format_quantity(choice_.timeout_seconds, "s") +
                              " is stopped (timed_out)");
}

auto_pool::~auto_pool() = default;

std::string auto_pool::report() const {
  return describe(choice_);
}

std::size_t auto_pool::concurrency() const noexcept {
  return std::visit([](const auto& p) { return p->concurrency(); }, pool_);
}

void auto_pool::wait_idle() {
  std::visit([](auto& p) { p->wait_idle(); }, pool_);
}

void auto_pool::shutdown(shutdown_mode mode) {
  std::visit([mode](auto& p) { p->shutdown(mode); }, pool_);
}

void auto_pool::close(shutdown_mode mode) {
  std::visit([mode](auto& p) { p->close(mode); }, pool_);
}

stop_report auto_pool::stop_now() {
  return std::visit([](auto& p) { return p->stop_now(); }, pool_);
}

bool auto_pool::closed() const noexcept {
  return std::visit([](const auto& p) { return p->closed(); }, pool_);
}

pool_stats auto_pool::stats() const {
  return std::visit([](const auto& p) { return static_cast<pool_stats>(p->stats()); }, pool_);
}

thread_pool* auto_pool::threads() noexcept {
  auto* p = std::get_if<std::unique_ptr<thread_pool>>(&pool_);
  return p ? p->get() : nullptr;
}

process_pool* auto_pool::processes() noexcept {
  auto* p = std::get_if<std::unique_ptr<process_pool>>(&pool_);
  return p ? p->get() : nullptr;
}

hybrid_pool* auto_pool::hybrid() noexcept {
  auto* p = std::get_if<std::unique_ptr<hybrid_pool>>(&pool_);
  return p ? p->get() : nullptr;
}

}  // namespace crew
