#include "experiments/common.hpp"

#include "lab/child.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <system_error>
#include <thread>

namespace crew::lab {

std::string pack_doubles(const std::vector<double>& v) {
  std::string s(v.size() * sizeof(double), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::vector<double> unpack_doubles(const std::string& bytes) {
  std::vector<double> v(bytes.size() / sizeof(double));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(double));
  return v;
}

int wait_for(pid_t pid) noexcept {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

void* map_shared(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  return p;
}

void unmap(void* p, std::size_t bytes) noexcept {
  if (p != nullptr) ::munmap(p, bytes);
}

unsigned char* map_touched(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  auto* c = static_cast<unsigned char*>(p);
  const long page = ::sysconf(_SC_PAGESIZE);
  for (std::size_t i = 0; i < bytes; i += static_cast<std::size_t>(page))
    c[i] = static_cast<unsigned char>(i >> 12);
  return c;
}

namespace {
// Pins the calling thread to the n-th CPU of `allowed` (n < CPU_COUNT(allowed)).
bool pin_to_nth(const cpu_set_t& allowed, int n) noexcept {
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed) || n-- != 0) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    return ::sched_setaffinity(0, sizeof one, &one) == 0;
  }
  return false;
}
}  // namespace

bool pin_to_cpu(unsigned cpu) noexcept {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  const int count = CPU_COUNT(&allowed);
  if (count == 0) return false;
  return pin_to_nth(allowed, static_cast<int>(cpu % static_cast<unsigned>(count)));
}

peer_placement::peer_placement() noexcept {
  CPU_ZERO(&saved_);
  if (::sched_getaffinity(0, sizeof saved_, &saved_) != 0 || CPU_COUNT(&saved_) < 2) return;
  pinned_ = pin_to_nth(saved_, 0);
}

peer_placement::~peer_placement() {
  if (pinned_) ::sched_setaffinity(0, sizeof saved_, &saved_);
}

void peer_placement::place_peer() const noexcept {
  // From the set the measuring thread had before it pinned itself: a peer started after that
  // inherits the one core it took.
  if (pinned_) pin_to_nth(saved_, 1);
}

void file_samples(series& s, const std::vector<double>& all, int warmup) {
  const auto w = static_cast<std::size_t>(warmup < 0 ? 0 : warmup);
  for (std::size_t i = 0; i < all.size(); ++i) (i < w ? s.warmup : s.samples).push_back(all[i]);
}

double median_ratio(const series* a, const series* b) {
  if (a == nullptr || b == nullptr || !a->has_data() || !b->has_data()) return std::nan("");
  const double d = b->stats().median;
  return d == 0 ? std::nan("") : a->stats().median / d;
}

std::string true_program() {
  for (const char* p : {"/bin/true", "/usr/bin/true"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

}  // namespace crew::lab

namespace crew::lab {

double timed_team(bool processes, unsigned workers,
                  const std::function<void(unsigned, const std::function<void()>&)>& body) {
  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return std::nan("");
  if (::pipe2(go, O_CLOEXEC) != 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return std::nan("");
  }
  // Ready: one byte per member. Go: EOF on the pipe wakes every member at once.
  const auto go_fn = [&] {
    char c = 1;
    write_all(ready[1], &c, 1);
    while (::read(go[0], &c, 1) < 0 && errno == EINTR) {
    }
  };
  std::vector<pid_t> pids;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < workers; ++i) {
    if (processes) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(go[1]);
        body(i, go_fn);
        ::_exit(0);
      }
      if (pid > 0) pids.push_back(pid);
    } else {
      threads.emplace_back([&, i] { body(i, go_fn); });
    }
  }
  const std::size_t members = processes ? pids.size() : threads.size();
  char c;
  for (std::size_t i = 0; i < members; ++i) read_all(ready[0], &c, 1);
  const auto t0 = clock::now();
  ::close(go[1]);
  bool failed = members != workers;
  for (auto& t : threads) t.join();
  for (pid_t p : pids) {
    const int st = wait_for(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = true;
  }
  const double dt = seconds_since(t0);
  ::close(go[0]);
  ::close(ready[0]);
  ::close(ready[1]);
  return failed ? std::nan("") : dt;
}

}  // namespace crew::lab
