#include "crew/error.hpp"

#include "core/exception_name.hpp"

#include <cxxabi.h>

#include <memory>
#include <typeinfo>
#include <utility>

namespace crew {

std::string_view to_string(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::exception:
      return "exception";
    case error_kind::crashed:
      return "crashed";
    case error_kind::timed_out:
      return "timed_out";
    case error_kind::out_of_memory:
      return "out_of_memory";
    case error_kind::cancelled:
      return "cancelled";
    case error_kind::worker_lost:
      return "worker_lost";
    case error_kind::serialization:
      return "serialization";
    case error_kind::pool_closed:
      return "pool_closed";
    case error_kind::queue_full:
      return "queue_full";
  }
  return "unknown";
}

// The base holds an empty message (libstdc++'s static empty string, never counted); what()
// returns message_.
task_error::task_error(error_kind kind, const std::string& message)
    : std::runtime_error(""), message_(message), kind_(kind) {}

task_error::task_error(error_kind kind, const std::string& message, details info)
    : std::runtime_error(""), message_(message), kind_(kind), info_(std::move(info)) {}

task_error task_error::from_exception(std::exception_ptr error) {
  details info;
  info.original = error;
  std::string message;
  try {
    std::rethrow_exception(error);
  } catch (const task_error& e) {
    return e;
  } catch (const std::exception& e) {
    info.remote_type = detail::current_exception_type_name();
    message = e.what();
  } catch (...) {
    info.remote_type = detail::current_exception_type_name();
    message = "task threw an exception that does not derive from std::exception";
  }
  return {error_kind::exception, message, std::move(info)};
}

}  // namespace crew

namespace crew::detail {

std::string current_exception_type_name() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (type == nullptr) return "unknown";
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> name{
      abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free};
  return status == 0 && name ? std::string{name.get()} : std::string{type->name()};
}

}  // namespace crew::detail
