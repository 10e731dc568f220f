// crew/detail/watch.hpp — several observers of one future's state.
//
// A state has one continuation slot. The waiting calls on futures the caller keeps (wait,
// as_completed over an lvalue range, when_any, then) may look at the same future many times
// (wait(FIRST_COMPLETED) in a loop), so they do not take the slot themselves: the first watch()
// of a state puts a fan-out continuation there, and every watcher subscribes to it. unwatch()
// removes a watcher that stops caring (wait() returning on a timeout), so repeated waits do not
// pile up.
//
// Thread-safety: every function may be called from any thread. A watcher's on_ready runs once,
// on the thread that completes the state (or in watch() when it is ready already), outside every
// lock of this module; it must not block. Lifetime: the fan-out holds a shared_ptr to each
// watcher until the state is ready or the watcher is unwatched.
#pragma once

#include <cstddef>
#include <memory>

#include "crew/detail/shared_state.hpp"

namespace crew::detail {

class watcher {
 public:
  /// `tag` is the value given to watch(). Runs at most once per watch() call.
  virtual void on_ready(std::size_t tag) noexcept = 0;

 protected:
  ~watcher() = default;
};

/// Calls w->on_ready(tag) once `state` is ready (at once, from this call, if it is already).
void watch(state_base& state, std::shared_ptr<watcher> w, std::size_t tag);

/// Forgets the subscriptions of `w` to `state` (no-op once the state is ready: they have fired).
void unwatch(state_base& state, const watcher* w) noexcept;

}  // namespace crew::detail
