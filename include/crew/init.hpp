// crew/init.hpp — crew::init(argc, argv), the first statement of main() in programs whose pools
// start workers by exec (start_method::spawn) or through a fork server (start_method::forkserver).
//
// In a normal run it records argv, starts the fork server while the process has one thread, and
// returns. In a process started as a crew worker it serves tasks and never returns. Harmless when
// no pool needs it. Not thread-safe: call it before starting threads.
#pragma once

namespace crew {

void init(int argc, char** argv);

}  // namespace crew
