// The public process_pool and hybrid_pool: thin handles on a process_pool_core
// (executors/process/pool_core.hpp), which the futures of their tasks share.
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "executors/process/pool_core.hpp"

namespace crew::detail {

remote_pool::remote_pool(const process_pool_options& options, std::size_t threads_per_process)
    : core_(std::make_shared<process_pool_core>(options, threads_per_process)) {
  inline_args_limit_ = core_->inline_args_limit();
  core_->start();
}

remote_pool::~remote_pool() {
  core_->shutdown(shutdown_mode::drain);
}

std::uint64_t remote_pool::enqueue(submission job) {
  return core_->enqueue(std::move(job));
}
void remote_pool::wait_idle() {
  core_->wait_idle();
}
void remote_pool::shutdown(shutdown_mode mode) {
  core_->shutdown(mode);
}
bool remote_pool::closed() const noexcept {
  return core_->closed();
}
process_pool_stats remote_pool::stats() const {
  return core_->stats();
}
std::size_t remote_pool::concurrency() const noexcept {
  return core_->concurrency();
}
std::vector<int> remote_pool::worker_pids() const {
  return core_->worker_pids();
}
void remote_pool::close(shutdown_mode mode) {
  core_->close(mode);
}
stop_report remote_pool::stop_now() {
  return core_->stop_now();
}
task_error remote_pool::expired_call(const call_options& options, std::string function) noexcept {
  core_->count_expired();
  return expired_call_error(options, function);
}

}  // namespace crew::detail

namespace crew {

hybrid_pool::hybrid_pool(const hybrid_pool_options& options)
    : remote_pool(options.to_process_options(), options.threads_per_process) {}

}  // namespace crew
