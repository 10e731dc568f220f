// crew::progress_bar: the text it draws and when (crew/progress.hpp).
#include "crew/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace crew {

namespace {

using std::chrono::steady_clock;

double seconds(steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

/// 12.3, 4567, 12.3k, 1.23M: short and stable, for items per second.
std::string format_rate(double rate) {
  char text[32];
  if (rate >= 1e6) {
    std::snprintf(text, sizeof text, "%.2fM", rate / 1e6);
  } else if (rate >= 1e4) {
    std::snprintf(text, sizeof text, "%.1fk", rate / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.1f", rate);
  }
  return text;
}

}  // namespace

namespace detail {
std::string format_duration(steady_clock::duration d) {
  const auto total =
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(d).count());
  char text[48];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%" PRId64 ":%02" PRId64 ":%02" PRId64, total / 3600,
                  total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%" PRId64 ":%02" PRId64, total / 60, total % 60);
  }
  return text;
}
}  // namespace detail

struct progress_bar::state {
  explicit state(progress_bar_options o) : options(std::move(o)) {
    if (options.width == 0) throw std::invalid_argument("crew::progress_bar: width must be >= 1");
    if (options.line_interval < steady_clock::duration::zero()) {
      throw std::invalid_argument("crew::progress_bar: line_interval must not be negative");
    }
    out = options.out != nullptr ? options.out : &std::cerr;
    tty = options.tty.value_or(out == &std::cerr && ::isatty(STDERR_FILENO) == 1);
  }
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state() {
    // A line drawn in place and never finished (a stream left early): end it, so that what the
    // program prints next starts on a line of its own.
    if (open) *out << '\n' << std::flush;
  }

  progress_bar_options options;
  std::ostream* out = nullptr;
  bool tty = false;
  std::mutex mutex;
  bool open = false;                                // TTY: a line drawn without its newline
  std::optional<steady_clock::duration> last_line;  // plain: when the last line was printed
};

progress_bar::progress_bar() : progress_bar(progress_bar_options{}) {}

progress_bar::progress_bar(progress_bar_options options)
    : state_(std::make_shared<state>(std::move(options))) {}

progress_bar::~progress_bar() = default;

bool progress_bar::tty() const noexcept {
  return state_->tty;
}

std::string progress_bar::format(const progress_info& info) const {
  const progress_bar_options& o = state_->options;
  const double elapsed = seconds(info.elapsed);
  const double rate = elapsed > 0 ? static_cast<double>(info.done) / elapsed : 0.0;
  const std::string rate_text = format_rate(rate) + ' ' + o.unit + "/s";
  const std::string elapsed_text = detail::format_duration(info.elapsed);
  std::string eta_text = "?";
  if (info.total > 0 && info.done >= info.total) {
    eta_text = "0:00";
  } else if (info.total > 0 && rate > 0) {
    eta_text = detail::format_duration(std::chrono::duration_cast<steady_clock::duration>(
        std::chrono::duration<double>(static_cast<double>(info.total - info.done) / rate)));
  }
  // Percent rounds down, so 100% means all of it.
  const std::size_t done = info.total > 0 ? std::min(info.done, info.total) : info.done;
  const std::size_t percent = info.total > 0 ? done * 100 / info.total : 0;

  std::string text = o.label.empty() ? std::string{} : o.label + ": ";
  if (state_->tty) {
    if (info.total > 0) {
      const std::size_t filled = done * o.width / info.total;
      text += std::to_string(percent) + "% [" + std::string(filled, '#') +
              std::string(o.width - filled, '.') + "] " + std::to_string(info.done) + '/' +
              std::to_string(info.total) + ' ' + elapsed_text + '<' + eta_text + ", " + rate_text;
    } else {
      text += std::to_string(info.done) + ' ' + o.unit + ' ' + elapsed_text + ", " + rate_text;
    }
  } else {
    if (info.total > 0) {
      text += std::to_string(info.done) + '/' + std::to_string(info.total) + " (" +
              std::to_string(percent) + "%)";
    } else {
      text += std::to_string(info.done) + ' ' + o.unit;
    }
    text += " in " + elapsed_text + ", " + rate_text;
    if (info.final) {
      text += ", done";
    } else if (info.total > 0) {
      text += ", ETA " + eta_text;
    }
  }
  return text;
}

void progress_bar::operator()(const progress_info& info) const {
  state& s = *state_;
  std::lock_guard lock{s.mutex};
  if (s.tty) {
    *s.out << '\r' << format(info) << "\x1b[K";
    s.open = !info.final;
    if (info.final) *s.out << '\n';
    *s.out << std::flush;
    return;
  }
  // A bar used again starts a new run: its clock restarts.
  if (s.last_line && info.elapsed < *s.last_line) s.last_line.reset();
  const steady_clock::duration since =
      info.elapsed - s.last_line.value_or(steady_clock::duration::zero());
  if (info.final || since >= s.options.line_interval) {
    *s.out << format(info) << '\n' << std::flush;
    s.last_line = info.elapsed;
  }
  if (info.final) s.last_line.reset();
}

}  // namespace crew
