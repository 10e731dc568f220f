// crew/detail/format.hpp — numbers as the advice prints them: three significant digits and a unit
// ("12.3 ms", "64.0 MiB", "1.95×"). The same text as the CLI's tables, so the reasons read the
// same from `crew advise` and from crew::advise<&fn>. Reentrant.
#pragma once

#include <string>
#include <string_view>

namespace crew::detail {

/// `unit` is "s", "B", "B/s", "x" (a ratio), "%" (a fraction shown as a percentage) or "count"
/// (a whole number, no unit); any other
/// unit gets a decimal prefix glued to it ("12.3 ktasks/s").
std::string format_quantity(double v, std::string_view unit);

}  // namespace crew::detail
