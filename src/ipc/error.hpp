// ipc/error.hpp — the named errors of crew's shared-memory transport.
//
// Purpose: every blocking call of the ipc layer either succeeds or throws one of these, so a
// caller can tell a peer that broke the protocol (corrupt_channel) from a peer that went away
// (peer_lost) from a peer that is merely slow (wait_timeout). OS failures are std::system_error
// naming the failed call.
// Thread-safety: plain exception types. Lifetime: value types.
#pragma once

#include <stdexcept>
#include <string>

namespace crew::detail::ipc {

/// Base of the ipc layer's protocol errors.
class channel_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Shared memory that the peer writes holds something the protocol does not allow (an index out
/// of range, a length past the data, a record kind that does not exist, ...). The channel is
/// unusable afterwards: every later call on the same endpoint throws again.
class corrupt_channel : public channel_error {
 public:
  using channel_error::channel_error;
};

/// The wait's `peer_alive` predicate said the other side is gone.
class peer_lost : public channel_error {
 public:
  using channel_error::channel_error;
};

/// The wait's deadline passed before the other side made progress.
class wait_timeout : public channel_error {
 public:
  using channel_error::channel_error;
};

}  // namespace crew::detail::ipc
