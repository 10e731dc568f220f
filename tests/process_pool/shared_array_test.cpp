// crew::shared_array handed to tasks by mapping: on a thread pool and on process and hybrid
// pools under every start method, as arguments and as results; read-only by type; what is
// refused and why; and that nothing is left behind (descriptors, /dev/shm entries).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#define CREW_CHECKED_INDEXING 1
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/shared_array.hpp"
#include "crew/thread_pool.hpp"
#include "support/process.hpp"

namespace {

using crew::error_kind;
using crew::shared_array;
using crew::start_method;

std::int64_t sum_all(shared_array<const std::int64_t> data) {
  return std::accumulate(data.begin(), data.end(), std::int64_t{0});
}

// Doubles every element in place: the caller sees the writes (the same pages, not a copy).
std::size_t double_all(shared_array<std::int64_t> data) {
  for (auto& x : data) x *= 2;
  return data.size();
}

// Writes through a read-only mapping: the write faults in a worker process.
int write_read_only(shared_array<const std::int64_t> data) {
  const_cast<std::int64_t&>(data[0]) = 42;
  return 0;
}

// Made in the worker and returned: the worker's handle is gone when the parent reads it.
shared_array<const std::int64_t> make_squares(int n) {
  auto out = shared_array<std::int64_t>::create(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = std::int64_t{i} * i;
  return out;
}

std::int64_t sum_many(std::vector<shared_array<const std::int64_t>> arrays) {
  std::int64_t total = 0;
  for (const auto& a : arrays) total += std::accumulate(a.begin(), a.end(), std::int64_t{0});
  return total;
}

// A large ordinary argument (it travels in a memfd of its own) beside a shared array.
std::int64_t sum_both(const std::vector<std::int64_t>& big, shared_array<const std::int64_t> data) {
  return std::accumulate(big.begin(), big.end(), std::int64_t{0}) + sum_all(data);
}

// A large result (in a memfd of its own) with a shared array beside it.
std::pair<std::vector<std::int64_t>, shared_array<const std::int64_t>> big_and_shared(int n) {
  return {std::vector<std::int64_t>(static_cast<std::size_t>(n), 7), make_squares(n)};
}

std::size_t size_of(shared_array<const std::int64_t> data) {
  return data.size();
}

std::uint8_t last_byte(crew::shared_buffer buffer) {
  return static_cast<std::uint8_t>(buffer[buffer.size() - 1]);
}

std::vector<std::string> dev_shm_entries() {
  std::vector<std::string> out;
  if (DIR* dir = opendir("/dev/shm")) {
    while (const dirent* e = readdir(dir)) out.emplace_back(e->d_name);
    closedir(dir);
  }
  std::sort(out.begin(), out.end());
  return out;
}

shared_array<std::int64_t> iota_array(std::size_t n) {
  auto a = shared_array<std::int64_t>::create(n);
  std::iota(a.begin(), a.end(), std::int64_t{1});
  return a;
}

std::int64_t triangle(std::int64_t n) {
  return n * (n + 1) / 2;
}

// --- the handle on its own ---------------------------------------------------------------------

TEST(SharedArray, CreatesZeroFilledAndConvertsToReadOnly) {
  auto a = shared_array<std::int64_t>::create(1000);
  ASSERT_EQ(a.size(), 1000U);
  EXPECT_EQ(a.size_bytes(), 8000U);
  EXPECT_TRUE(std::all_of(a.begin(), a.end(), [](std::int64_t x) { return x == 0; }));
  a[999] = 7;
  shared_array<const std::int64_t> view = a;
  EXPECT_TRUE(view.shares_with(a));
  EXPECT_EQ(view[999], 7);
  EXPECT_FALSE(shared_array<std::int64_t>::create(3).shares_with(a));
  const shared_array<int> empty = shared_array<int>::create(0);
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.data(), nullptr);
}

TEST(SharedArray, IndexOutOfRangeThrows) {
  auto a = shared_array<int>::create(4);
  EXPECT_THROW((void)a.at(4), std::out_of_range);
  try {
    (void)a[5];  // checked here: CREW_CHECKED_INDEXING is 1 in this file
    FAIL() << "operator[] must check";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string{e.what()}.find("index 5"), std::string::npos) << e.what();
    EXPECT_NE(std::string{e.what()}.find("size 4"), std::string::npos) << e.what();
  }
}

TEST(SharedArray, ASizeThatCannotBeHadIsAClearErrorNotASignal) {
  try {
    (void)shared_array<std::int64_t>::create(std::size_t{1} << 61);
    FAIL() << "2^64 bytes of shared memory cannot be had";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string{e.what()}.find("do not fit"), std::string::npos) << e.what();
  }
  try {
    // 64 TiB: beyond any tmpfs and memory cgroup of a test machine.
    (void)shared_array<std::byte>::create(std::size_t{1} << 46);
    FAIL() << "64 TiB of shared memory cannot be had here";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string{e.what()}.find("70368744177664 bytes"), std::string::npos) << e.what();
  }
}

TEST(SharedArray, RefusesToEncodeWhereNoDescriptorCanGo) {
  auto a = iota_array(10);
  try {
    (void)crew::codec::encode(a);
    FAIL() << "a shared array must not encode as bytes";
  } catch (const crew::serialization_error& e) {
    EXPECT_NE(std::string{e.what()}.find("cannot be encoded here"), std::string::npos) << e.what();
  }
  // An empty array has no memory to send: it encodes anywhere.
  EXPECT_NO_THROW((void)crew::codec::encode(shared_array<int>{}));
}

TEST(SharedArray, DecodingChecksWhatArrived) {
  auto a = iota_array(10);
  crew::detail::outgoing_attachments sent;
  std::vector<std::byte> bytes;
  {
    const crew::detail::sending_attachments with{&sent};
    bytes = crew::codec::encode(shared_array<const std::int64_t>{a});
  }
  ASSERT_EQ(sent.size(), 1U);
  // Nothing arrived beside the message.
  shared_array<const std::int64_t> out;
  EXPECT_THROW(crew::codec::decode_into(bytes, out), crew::serialization_error);
  // It arrived read-only and cannot be taken as writable.
  const std::vector<int> fds = sent.fds();
  const crew::detail::incoming_attachments received{fds};
  {
    const crew::detail::receiving_attachments with{&received};
    shared_array<std::int64_t> writable;
    EXPECT_THROW(crew::codec::decode_into(bytes, writable), crew::serialization_error);
    crew::codec::decode_into(bytes, out);
  }
  EXPECT_EQ(sum_all(out), triangle(10));
  a[0] = 100;  // the same pages, mapped twice in this process
  EXPECT_EQ(out[0], 100);
  // A memfd that is not sealed could be truncated under the reader: refused.
  const int plain = memfd_create("plain", MFD_CLOEXEC);
  ASSERT_GE(plain, 0);
  ASSERT_EQ(ftruncate(plain, 4096), 0);
  EXPECT_THROW((void)crew::detail::attach_shared_mapping(plain, 4096, false),
               crew::serialization_error);
  close(plain);
}

TEST(SharedArray, ThreadPoolTasksSeeTheSameMemory) {
  crew::thread_pool pool{2};
  auto data = iota_array(100'000);
  EXPECT_EQ(pool.submit(sum_all, data).get(), triangle(100'000));
  EXPECT_EQ(pool.submit(double_all, data).get(), 100'000U);
  EXPECT_EQ(data[99'999], 200'000);
}

// --- process and hybrid pools --------------------------------------------------------------------

struct pool_kind {
  const char* name;
  start_method method;
  bool hybrid;
};

class SharedArrayOnPool : public ::testing::TestWithParam<pool_kind> {
 protected:
  std::unique_ptr<crew::detail::remote_pool> make(std::size_t max_tasks = 0) const {
    crew::process_pool_options o;
    o.workers = 2;
    o.start = GetParam().method;
    o.max_tasks_per_worker = max_tasks;
    o.task_timeout = std::chrono::seconds{60};
    if (GetParam().hybrid) {
      crew::hybrid_pool_options h;
      h.processes = 2;
      h.threads_per_process = 2;
      h.start = o.start;
      h.max_tasks_per_worker = max_tasks;
      h.task_timeout = o.task_timeout;
      return std::make_unique<crew::hybrid_pool>(h);
    }
    return std::make_unique<crew::process_pool>(o);
  }
};

TEST_P(SharedArrayOnPool, ATaskReadsAndWritesTheCallersMemory) {
  auto pool = make();
  auto data = iota_array(1'000'000);
  EXPECT_EQ(pool->submit<&sum_all>(data).get(), triangle(1'000'000));
  EXPECT_EQ(pool->submit<&double_all>(data).get(), 1'000'000U);
  EXPECT_EQ(data[0], 2);
  EXPECT_EQ(data[999'999], 2'000'000) << "the worker's writes land in the caller's pages";
  EXPECT_EQ(pool->submit<&sum_all>(data).get(), 2 * triangle(1'000'000));
}

TEST_P(SharedArrayOnPool, AWriteToReadOnlyMemoryFailsThatTaskOnly) {
  auto pool = make();
  auto data = iota_array(16);
  auto f = pool->submit<&write_read_only>(data);
  try {
    (void)f.get();
    FAIL() << "a write to a read-only mapping must fault";
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::crashed) << e.what();
    EXPECT_NE(std::string{e.what()}.find("received read-only"), std::string::npos) << e.what();
  }
  EXPECT_EQ(data[0], 1) << "the read-only task changed nothing";
  EXPECT_EQ(pool->submit<&sum_all>(data).get(), triangle(16)) << "the pool goes on";
}

TEST_P(SharedArrayOnPool, AnArrayMadeInAWorkerOutlivesTheWorker) {
  auto pool = make(/*max_tasks=*/1);  // each worker is replaced after one task
  std::vector<crew::future<shared_array<const std::int64_t>>> futures;
  for (int n = 1; n <= 20; ++n) futures.push_back(pool->submit<&make_squares>(n * 1000));
  for (int n = 1; n <= 20; ++n) {
    const auto squares = futures[static_cast<std::size_t>(n - 1)].get();
    ASSERT_EQ(squares.size(), static_cast<std::size_t>(n) * 1000);
    EXPECT_EQ(squares[squares.size() - 1], std::int64_t{n * 1000 - 1} * std::int64_t{n * 1000 - 1});
  }
  // And one returned array handed on to another task.
  auto squares = pool->submit<&make_squares>(100).get();
  EXPECT_EQ(pool->submit<&sum_all>(squares).get(), 328'350);
}

TEST_P(SharedArrayOnPool, ManyArraysAndALargeArgumentTravelTogether) {
  auto pool = make();
  std::vector<shared_array<const std::int64_t>> arrays;
  std::int64_t expected = 0;
  for (std::size_t n = 1; n <= 64; ++n) {
    arrays.emplace_back(iota_array(n));
    expected += triangle(static_cast<std::int64_t>(n));
  }
  EXPECT_EQ(pool->submit<&sum_many>(arrays).get(), expected);
  // One more than a message may carry: refused before it reaches the pool, with the reason.
  arrays.emplace_back(iota_array(1));
  auto refused = pool->submit<&sum_many>(arrays);
  try {
    (void)refused.get();
    FAIL() << "65 arrays in one message must be refused";
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::serialization);
    EXPECT_NE(std::string{e.what()}.find("more than 64"), std::string::npos) << e.what();
  }
  // A 1 MiB vector travels in a memfd of its own; the array's descriptor goes after it.
  const std::vector<std::int64_t> big(128 * 1024, 3);
  EXPECT_EQ(pool->submit<&sum_both>(big, iota_array(50)).get(), 3 * 128 * 1024 + triangle(50));
  EXPECT_EQ(pool->submit<&size_of>(shared_array<const std::int64_t>{}).get(), 0U);
}

TEST_P(SharedArrayOnPool, ALargeResultAndASharedArrayComeBackTogether) {
  auto pool = make();
  for (int round = 0; round < 5; ++round) {
    const auto [big, squares] = pool->submit<&big_and_shared>(200'000).get();
    ASSERT_EQ(big.size(), 200'000U);
    EXPECT_EQ(big.back(), 7);
    ASSERT_EQ(squares.size(), 200'000U);
    EXPECT_EQ(squares[199'999], std::int64_t{199'999} * 199'999);
  }
}

TEST_P(SharedArrayOnPool, ATemporaryArrayLivesUntilItsTaskHasIt) {
  auto pool = make();
  std::vector<crew::future<std::int64_t>> futures;
  // The caller keeps no handle: the queued task's record does.
  for (int i = 0; i < 50; ++i) futures.push_back(pool->submit<&sum_all>(iota_array(1000)));
  for (auto& f : futures) EXPECT_EQ(f.get(), triangle(1000));
}

TEST_P(SharedArrayOnPool, NothingIsLeftBehind) {
  const auto shm_before = dev_shm_entries();
  {
    // The first forkserver pool of a process starts the forkserver, which keeps a socket open
    // for the process's life: start it before counting.
    auto warm_up = make();
    (void)warm_up->submit<&size_of>(iota_array(1)).get();
  }
  const int fds_before = crew::test::open_fd_count();
  std::vector<int> workers;
  {
    auto pool = make();
    for (int round = 0; round < 5; ++round) {
      std::vector<crew::future<std::int64_t>> futures;
      for (int i = 0; i < 40; ++i) futures.push_back(pool->submit<&sum_all>(iota_array(100)));
      for (int i = 0; i < 10; ++i) (void)pool->submit<&make_squares>(10).get();
      for (auto& f : futures) EXPECT_EQ(f.get(), triangle(100));
    }
    workers = pool->worker_pids();
  }
  // The pool is gone (its destructor joined its threads): every descriptor it received or kept
  // for an array is closed, its workers are gone, and nothing was ever named in /dev/shm.
  EXPECT_EQ(crew::test::open_fd_count(), fds_before) << "every array's descriptor was closed";
  EXPECT_TRUE(crew::test::still_alive_after(workers, std::chrono::seconds{10}).empty());
  EXPECT_EQ(dev_shm_entries(), shm_before) << "nothing is named in /dev/shm";
}

TEST_P(SharedArrayOnPool, ABigBufferCrossesWhole) {
  auto pool = make();
  // 256 MiB (the benchmark hands over 1 GiB and times it).
  auto buffer = crew::shared_buffer::create(std::size_t{256} << 20);
  buffer[buffer.size() - 1] = std::byte{0x5a};
  EXPECT_EQ(pool->submit<&last_byte>(buffer).get(), 0x5a);
}

INSTANTIATE_TEST_SUITE_P(Pools, SharedArrayOnPool,
                         ::testing::Values(pool_kind{"fork", start_method::fork, false},
                                           pool_kind{"spawn", start_method::spawn, false},
                                           pool_kind{"forkserver", start_method::forkserver, false},
                                           pool_kind{"hybrid", start_method::forkserver, true}),
                         [](const auto& param) { return std::string{param.param.name}; });

}  // namespace
