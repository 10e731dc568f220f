// crew/progress.hpp — progress reporting for the algorithms and streams, and a terminal bar.
//
//   crew::map<&fn>(pool, inputs, {.progress = crew::progress_bar{{.label = "fn"}}});
//   crew::map<&fn>(pool, inputs, {.progress = [](const crew::progress_info& p) { ... }});
//
// A progress callback receives a progress_info (items done, total, time since the call). Who
// calls it, and when, is the same for every algorithm (crew/algorithm.hpp) and stream
// (crew/stream.hpp) on every executor:
//  - on the caller's thread (the one in map/for_each/..., or the one iterating the stream), never
//    on a pool worker or a result thread: one call at a time, never concurrent with itself;
//  - at most once per `progress_interval` (default 100 ms) while the work goes on, plus once at
//    the end with `final` set. Interval 0: on every change (each finished chunk; each item a
//    stream hands out) instead of on a timer. A negative interval throws std::invalid_argument;
//  - `done` never decreases, and `done == total` only in the final call. The final call comes
//    exactly once when the call completes (even an empty one: 0 of 0), before the algorithm
//    returns or rethrows a task's failure.
//  - A callback that throws: no further calls; an algorithm cancels its chunks (future::cancel:
//    a chunk not started never runs), waits for all of them and rethrows the callback's
//    exception; a stream lets it propagate from begin()/++ (the iterator is on the item it was
//    handed; the stream stays usable, without progress).
// crew/algorithm.hpp and crew/stream.hpp say what `done` counts for each.
//
// progress_bar draws rate and ETA on a terminal (redrawn in place when its stream is a TTY;
// otherwise a plain line every `line_interval` and one at the end). Thread-safety: its calls are
// serialized by a mutex; copies share one bar (so it can be stored in a std::function and still be
// watched). Lifetime: the last copy ends a line it left open (a stream abandoned early).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

namespace crew {

/// What a progress callback is told.
struct progress_info {
  std::size_t done = 0;   ///< items finished (see the algorithm's or stream's definition)
  std::size_t total = 0;  ///< items in all; 0 when unknown (a stream over an unsized input)
  std::chrono::steady_clock::duration elapsed{};  ///< since the call (a stream: since begin())
  bool final = false;                             ///< the last call: the work is over
};

/// A progress callback: called on the caller's thread, one call at a time.
using progress_callback = std::function<void(const progress_info&)>;

/// Default interval between two progress calls (tqdm's mininterval).
inline constexpr std::chrono::milliseconds default_progress_interval{100};

struct progress_bar_options {
  /// Printed before the figures ("label: ..."); empty: none.
  std::string label{};
  /// Where to draw; null: std::cerr.
  std::ostream* out = nullptr;
  /// Redraw one line in place ('\r' and an erase-to-end-of-line code). Unset: when `out` is
  /// std::cerr (or null) and stderr is a terminal (isatty(2)); false for any other stream.
  std::optional<bool> tty{};
  /// Plain mode: at most one line per interval while the work goes on (plus the final line).
  std::chrono::steady_clock::duration line_interval = std::chrono::seconds{5};
  /// Characters between the brackets of the bar (TTY mode, total known). At least 1.
  std::size_t width = 30;
  /// What the items are called in the rate ("items/s").
  std::string unit = "items";
};

/// A progress callback that draws a bar with rate and ETA. See the header comment.
class progress_bar {
 public:
  progress_bar();
  explicit progress_bar(progress_bar_options options);
  progress_bar(const progress_bar&) = default;
  progress_bar& operator=(const progress_bar&) = default;
  progress_bar(progress_bar&&) noexcept = default;
  progress_bar& operator=(progress_bar&&) noexcept = default;
  ~progress_bar();

  /// Draws `info` (TTY: always; plain: when a line is due or `info.final`).
  void operator()(const progress_info& info) const;

  /// The text drawn for `info`, without '\r', erase code or newline: for tests and custom sinks.
  [[nodiscard]] std::string format(const progress_info& info) const;

  /// Whether this bar redraws in place.
  [[nodiscard]] bool tty() const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

namespace detail {
/// "m:ss", or "h:mm:ss" from an hour on.
std::string format_duration(std::chrono::steady_clock::duration d);
}  // namespace detail

}  // namespace crew
