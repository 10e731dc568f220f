#include "crew/version.hpp"

namespace crew {

const char* version() noexcept {
  return CREW_VERSION;
}

}  // namespace crew
