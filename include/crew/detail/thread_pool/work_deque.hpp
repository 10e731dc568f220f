// crew/detail/thread_pool/work_deque.hpp — one worker's queue: a Chase-Lev work-stealing deque.
//
// The owner pushes and pops at the bottom (LIFO, so fork-join runs the newest, hottest task);
// thieves take from the top (FIFO, the oldest and usually biggest piece of work). Lock-free.
// Thread-safety: push/pop/pop_if only from the owner thread; steal/steal_if from any thread.
//
// Each slot holds an item and a 64-bit tag that the owner wrote with it (the thread pool stores
// the item's lineage there, see thread_pool.cpp). pop_if/steal_if decide on the tag alone, before
// they take the item: a thief must not dereference an item it has not won, because the winner may
// already have run and freed it.
//
// The algorithm is Lê, Pop, Cohen, Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak
// Memory Models" (PPoPP 2013), with each seq_cst fence folded into the seq_cst access next to it,
// which ThreadSanitizer understands (it does not model stand-alone fences). Slots are atomics, so a
// thief that reads a slot the owner is overwriting reads a stale item or tag and then loses its CAS
// on top_, never a torn value. Buffers that were outgrown stay alive until the deque dies, because
// a thief may still be reading one.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace crew::detail {

template <class T>
class work_deque {
 public:
  /// An item and the tag pushed with it; item is null when nothing was taken.
  struct entry {
    T* item = nullptr;
    std::uint64_t tag = 0;
  };

  explicit work_deque(std::size_t capacity = 256) {
    std::size_t cap = 1;
    while (cap < capacity) cap <<= 1;
    buffers_.push_back(std::make_unique<buffer>(cap));
    buffer_.store(buffers_.back().get(), std::memory_order_relaxed);
  }
  work_deque(const work_deque&) = delete;
  work_deque& operator=(const work_deque&) = delete;

  /// Owner only.
  void push(T* item, std::uint64_t tag = 0) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_acquire);
    buffer* buf = buffer_.load(std::memory_order_relaxed);
    if (b - t > static_cast<std::int64_t>(buf->mask)) buf = grow(buf, t, b);
    buf->at(b).item.store(item, std::memory_order_relaxed);
    buf->at(b).tag.store(tag, std::memory_order_relaxed);
    // seq_cst rather than release: the pool's wake-up check that follows a push (load of the
    // searching count) must not be reordered before it. Matches the seq_cst loads in steal() and
    // the parking worker's recheck (thread_pool.cpp, park()).
    bottom_.store(b + 1, std::memory_order_seq_cst);
  }

  /// Owner only. The newest entry, or an empty one.
  entry pop() noexcept {
    return pop_if([](std::uint64_t) { return true; });
  }

  /// Owner only. The newest entry if `wanted(tag)` holds for it, else an empty one (the deque is
  /// then unchanged). An unwanted entry is given back the way pop() gives back an empty deque:
  /// bottom_ restored before anything was taken.
  template <class Pred>
  entry pop_if(Pred&& wanted) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    buffer* buf = buffer_.load(std::memory_order_relaxed);
    // Store-then-load on different words: both seq_cst so a thief's top_ CAS and this bottom_
    // store are ordered (the paper's fence). Matches the seq_cst loads in steal_if().
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return {};
    }
    entry out{buf->at(b).item.load(std::memory_order_relaxed),
              buf->at(b).tag.load(std::memory_order_relaxed)};
    if (!wanted(out.tag)) {
      bottom_.store(b + 1, std::memory_order_relaxed);
      return {};
    }
    if (t == b) {  // last item: race the thieves for it
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        out = {};
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return out;
  }

  /// Any thread. The oldest entry, or an empty one (empty, or lost a race: try elsewhere).
  entry steal() noexcept {
    return steal_if([](std::uint64_t) { return true; });
  }

  /// Any thread. Like steal(), but only takes the oldest entry if `wanted(tag)` holds for it. The
  /// tag read may be stale (the slot reused); then the CAS on top_ fails and nothing is taken.
  template <class Pred>
  entry steal_if(Pred&& wanted) noexcept {
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    // Matches the seq_cst store of bottom_ in pop() and push().
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return {};
    buffer* buf = buffer_.load(std::memory_order_acquire);
    const entry out{buf->at(t).item.load(std::memory_order_relaxed),
                    buf->at(t).tag.load(std::memory_order_relaxed)};
    if (!wanted(out.tag)) return {};
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return {};
    }
    return out;
  }

  /// Any thread; a snapshot.
  [[nodiscard]] bool empty() const noexcept {
    const std::int64_t t = top_.load(std::memory_order_seq_cst);
    return bottom_.load(std::memory_order_seq_cst) <= t;
  }
  [[nodiscard]] std::size_t size() const noexcept {
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    return b > t ? static_cast<std::size_t>(b - t) : 0;
  }

 private:
  struct slot {
    std::atomic<T*> item{nullptr};
    std::atomic<std::uint64_t> tag{0};
  };
  struct buffer {
    explicit buffer(std::size_t capacity)
        : mask(capacity - 1), slots(std::make_unique<slot[]>(capacity)) {}
    slot& at(std::int64_t i) noexcept { return slots[static_cast<std::size_t>(i) & mask]; }
    std::size_t mask;
    std::unique_ptr<slot[]> slots;
  };

  buffer* grow(buffer* old, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<buffer>((old->mask + 1) * 2);
    for (std::int64_t i = t; i < b; ++i) {
      bigger->at(i).item.store(old->at(i).item.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
      bigger->at(i).tag.store(old->at(i).tag.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
    }
    buffer* raw = bigger.get();
    buffers_.push_back(std::move(bigger));
    buffer_.store(raw, std::memory_order_release);  // pairs with the acquire load in steal_if()
    return raw;
  }

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  std::atomic<buffer*> buffer_{nullptr};
  std::vector<std::unique_ptr<buffer>> buffers_;  // owner only
};

}  // namespace crew::detail
