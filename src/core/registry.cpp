#include "crew/detail/registry.hpp"

#include <cstdio>
#include <cstdlib>
#include <deque>

namespace crew::detail {
namespace {

// Entries are appended during static initialization only, so lookups need no lock. A deque keeps
// the addresses handed out by register_task stable.
std::deque<task_entry>& table() noexcept {
  static std::deque<task_entry> entries;
  return entries;
}

}  // namespace

const task_entry& register_task(task_entry entry) noexcept {
  auto& entries = table();
  for (const task_entry& existing : entries) {
    if (existing.invoke == entry.invoke) return existing;  // same function, another TU
  }
  // Names can collide (two lambdas with the same signature in one scope): move the id along a
  // fixed sequence until it is free; registration order is fixed for a given binary.
  while (find_task(entry.id) != nullptr) entry.id = entry.id * 0x9e3779b97f4a7c15ULL + 1;
  entries.push_back(entry);
  return entries.back();
}

const task_entry* find_task(std::uint64_t id) noexcept {
  for (const task_entry& entry : table()) {
    if (entry.id == id) return &entry;
  }
  return nullptr;
}

std::size_t registered_task_count() noexcept {
  return table().size();
}

}  // namespace crew::detail
