// Must NOT compile: each CREW_CASE encodes a type the codec refuses, and the build must stop on
// crew's static_assert ("type is not serializable"), not on some unrelated error. CREW_CASE 0
// is the control: the same file with a serializable type compiles.
#include <string_view>
#include <vector>

#include "crew/codec.hpp"

struct not_serializable {
  int* p;
};

enum unfixed { unfixed_a, unfixed_b };

int main() {
#if CREW_CASE == 0
  return static_cast<int>(crew::codec::encoded_size(std::vector<int>{1, 2}));
#elif CREW_CASE == 1
  return static_cast<int>(crew::codec::encode(not_serializable{nullptr}).size());
#elif CREW_CASE == 2
  const char* text = "raw";
  return static_cast<int>(crew::codec::encoded_size(text));
#elif CREW_CASE == 3
  int x = 0;
  return static_cast<int>(crew::codec::encode(std::vector<int*>{&x}).size());
#elif CREW_CASE == 4
  return static_cast<int>(crew::codec::encoded_size(std::string_view("view")));
#elif CREW_CASE == 5
  return static_cast<int>(crew::codec::decode<not_serializable>({}).p != nullptr);
#elif CREW_CASE == 6
  return static_cast<int>(crew::codec::encoded_size(unfixed_a));
#endif
}
