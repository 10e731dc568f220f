#include "ipc/doorbell.hpp"

#include <new>
#include <stdexcept>

namespace crew::detail::ipc {
namespace {

std::byte* locate(std::span<std::byte> region, std::size_t offset) {
  if (offset % alignof(doorbell) != 0 || offset > region.size() ||
      region.size() - offset < sizeof(doorbell) ||
      reinterpret_cast<std::uintptr_t>(region.data()) % alignof(doorbell) != 0) {
    throw std::invalid_argument("doorbell: offset out of the region or misaligned");
  }
  return region.data() + offset;
}

}  // namespace

doorbell& make_doorbell(std::span<std::byte> region, std::size_t offset) {
  return *::new (locate(region, offset)) doorbell;
}

doorbell& doorbell_at(std::span<std::byte> region, std::size_t offset) {
  return *std::launder(reinterpret_cast<doorbell*>(locate(region, offset)));
}

namespace detail_wait {

void throw_timeout() {
  throw wait_timeout("ipc: deadline passed while waiting for the peer");
}
void throw_peer_lost() {
  throw peer_lost("ipc: peer is gone");
}

}  // namespace detail_wait
}  // namespace crew::detail::ipc
