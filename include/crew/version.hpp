// crew/version.hpp — the library's version, as built.
// Thread-safe; never blocks.
#pragma once

namespace crew {

/// The version of the crew library this program links, e.g. "0.1.0".
const char* version() noexcept;

}  // namespace crew
