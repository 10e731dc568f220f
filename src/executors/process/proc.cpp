#include "executors/process/proc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

namespace crew::detail::process {

std::size_t resident_bytes(pid_t pid) {
  std::ifstream statm{"/proc/" + std::to_string(pid) + "/statm"};
  std::size_t pages = 0;
  std::size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t own_resident_bytes() noexcept {
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  // "size resident shared text lib data dt", in pages: the second field.
  std::size_t field = 0;
  std::size_t pages = 0;
  for (ssize_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c == ' ') {
      if (++field > 1) break;
    } else if (field == 1 && c >= '0' && c <= '9') {
      pages = pages * 10 + static_cast<std::size_t>(c - '0');
    }
  }
  return pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t peak_resident_bytes(pid_t pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::string last_lines(const std::string& text, std::size_t max_lines) {
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  std::size_t begin = end;
  std::size_t lines = 0;
  while (begin > 0) {
    if (text[begin - 1] == '\n' && ++lines == max_lines) break;
    --begin;
  }
  return text.substr(begin, end - begin);
}

}  // namespace crew::detail::process
