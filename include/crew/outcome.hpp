// crew/outcome.hpp — a task's result as a value: either what it returned or the task_error that
// says why it did not. Returned by `future<T>::result()`, which never throws.
//
// An outcome is a plain value type: not synchronized, never blocks.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "crew/error.hpp"

namespace crew {

template <class T>
class [[nodiscard]] outcome {
 public:
  using value_type = T;

  outcome(T value) : data_(std::in_place_index<0>, std::move(value)) {}           // NOLINT
  outcome(task_error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws the task_error when there is none.
  T& value() & { return has_value() ? std::get<0>(data_) : throw std::get<1>(data_); }
  const T& value() const& { return has_value() ? std::get<0>(data_) : throw std::get<1>(data_); }
  T&& value() && { return has_value() ? std::get<0>(std::move(data_)) : throw std::get<1>(data_); }

  /// The error. Precondition: !has_value() (checked: throws std::logic_error otherwise).
  const task_error& error() const {
    if (has_value()) throw std::logic_error("crew::outcome::error(): the outcome holds a value");
    return std::get<1>(data_);
  }

 private:
  std::variant<T, task_error> data_;
};

template <>
class [[nodiscard]] outcome<void> {
 public:
  using value_type = void;

  outcome() noexcept = default;
  outcome(task_error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (!has_value()) throw std::get<1>(data_);
  }
  const task_error& error() const {
    if (has_value()) throw std::logic_error("crew::outcome::error(): the outcome holds a value");
    return std::get<1>(data_);
  }

 private:
  std::variant<std::monostate, task_error> data_;
};

}  // namespace crew
