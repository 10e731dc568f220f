// mpi/protocol.hpp — what rank 0 and the serving ranks say to each other.
//
// Every message travels on the session's own communicator (a duplicate of MPI_COMM_WORLD, or the
// intercommunicator of spawned ranks), so crew never matches a message of the program's own.
//
//   tag control       rank 0 -> rank: open{threads} | close | end;  rank -> rank 0: hello | closed
//   tag tasks         rank 0 -> rank: a batch of [request_header, encoded args]...
//   tag large_args    rank 0 -> rank: the arguments of one batch entry flagged `separate`
//   tag results       rank -> rank 0: a batch of [result_header, payload]...
//   tag large_result  rank -> rank 0: the payload of one batch entry flagged `separate`
//
// A `separate` payload is sent right after the batch that names it, in the batch's order; MPI
// keeps messages of one (source, tag, communicator) in order, so the receiver takes them with
// plain receives of the announced size, straight into the buffer that decodes them.
// Payloads: ok -> the encoded value; exception -> the encoded pair<type name, what()>;
// bad_request -> an encoded message string. Both sides check every size against the message.
#pragma once

#include <cstddef>
#include <cstdint>

namespace crew::detail::mpi {

enum tag : int {
  control = 7101,
  tasks = 7102,
  large_args = 7103,
  results = 7104,
  large_result = 7105
};

enum class control_op : std::uint32_t { open = 1, close = 2, end = 3, hello = 4, closed = 5 };

// end: a rank of the job died (mpirun --enable-recovery); MPI_Finalize would wait for it.
inline constexpr std::uint32_t flag_skip_finalize = 1;

struct control_message {
  control_op op;
  std::uint32_t threads;  // open: task threads on the rank; end: flags
  std::int32_t pid;       // hello: the serving process
  std::int32_t world_rank;
  char host[64];  // hello: its host name, NUL-terminated
};

inline constexpr std::uint32_t flag_separate = 1;

struct request_header {
  std::uint64_t seq;
  std::uint64_t task_id;
  std::uint64_t size;  // bytes of encoded arguments (inline, or in their own message)
  std::uint32_t flags;
  std::uint32_t reserved;
};

enum class result_status : std::uint32_t { ok = 0, exception = 1, bad_request = 2 };

struct result_header {
  std::uint64_t seq;
  std::uint64_t size;  // bytes of payload (inline, or in their own message)
  result_status status;
  std::uint32_t flags;
};

}  // namespace crew::detail::mpi
