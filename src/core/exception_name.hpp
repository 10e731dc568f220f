// core/exception_name.hpp — the readable type name of the exception being handled, for error
// reports that cross a process boundary (where the exception object itself cannot).
#pragma once

#include <string>

namespace crew::detail {

/// Inside a catch block: the demangled type of the current exception ("std::runtime_error",
/// "int"); "unknown" when there is none.
std::string current_exception_type_name();

}  // namespace crew::detail
