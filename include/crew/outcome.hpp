// crew/outcome.hpp — a task's result as a value: either what it returned or the task_error that
// says why it did not. Returned by `future<T>::result()` (which never throws) and yielded by
// imap/imap_unordered for each item.
//
// Spelled like std::expected<T, task_error>: has_value(), explicit bool, value(), error(),
// operator*, operator->, value_or. One difference, on purpose: reading the value of an error
// outcome (value(), *, ->) is never undefined — it throws the task_error — and error() on a
// value throws std::logic_error. (std::expected leaves * and -> unchecked and makes value()
// throw bad_expected_access.)
//
// An outcome is a plain value type: not synchronized, never blocks.
#pragma once

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "crew/error.hpp"

namespace crew {

template <class T>
class [[nodiscard]] outcome {
 public:
  using value_type = T;
  using error_type = task_error;

  outcome(T value) : data_(std::in_place_index<0>, std::move(value)) {}           // NOLINT
  outcome(task_error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws the task_error when there is none. (The throw is out of line, so that the
  /// check inlines: imap reads every item through here.)
  T& value() & {
    if (!has_value()) [[unlikely]]
      throw_error();
    return *std::get_if<0>(&data_);
  }
  const T& value() const& {
    if (!has_value()) [[unlikely]]
      throw_error();
    return *std::get_if<0>(&data_);
  }
  T&& value() && {
    if (!has_value()) [[unlikely]]
      throw_error();
    return std::move(*std::get_if<0>(&data_));
  }
  const T&& value() const&& {
    if (!has_value()) [[unlikely]]
      throw_error();
    return std::move(*std::get_if<0>(&data_));
  }

  /// As value(): checked, throws the task_error when there is no value.
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T&& operator*() const&& { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The value, or `fallback` converted to T when there is none. Never throws for the error.
  template <class U>
  T value_or(U&& fallback) const& {
    static_assert(std::is_copy_constructible_v<T> && std::is_convertible_v<U&&, T>,
                  "crew::outcome<T>::value_or: T must be copyable and U convertible to T");
    return has_value() ? std::get<0>(data_) : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  T value_or(U&& fallback) && {
    static_assert(std::is_move_constructible_v<T> && std::is_convertible_v<U&&, T>,
                  "crew::outcome<T>::value_or: T must be movable and U convertible to T");
    return has_value() ? std::get<0>(std::move(data_)) : static_cast<T>(std::forward<U>(fallback));
  }

  /// The error. Precondition: !has_value() (checked: throws std::logic_error otherwise).
  const task_error& error() const {
    if (has_value()) throw std::logic_error("crew::outcome::error(): the outcome holds a value");
    return std::get<1>(data_);
  }

 private:
  [[noreturn, gnu::noinline, gnu::cold]] void throw_error() const { throw std::get<1>(data_); }

  std::variant<T, task_error> data_;
};

template <>
class [[nodiscard]] outcome<void> {
 public:
  using value_type = void;
  using error_type = task_error;

  outcome() noexcept = default;
  outcome(task_error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  /// Throws the task_error when the task failed.
  void value() const {
    if (!has_value()) throw std::get<1>(data_);
  }
  /// As value().
  void operator*() const { value(); }
  const task_error& error() const {
    if (has_value()) throw std::logic_error("crew::outcome::error(): the outcome holds a value");
    return std::get<1>(data_);
  }

 private:
  std::variant<std::monostate, task_error> data_;
};

}  // namespace crew
