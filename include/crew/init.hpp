// crew/init.hpp — crew::init(argc, argv): optional. Where crew is linked statically into the
// program (the default build), spawn and forkserver workers start without it: they are copies
// of the binary exec'd from /proc/self/exe that become workers after the binary's static
// initializers and before main(), which never runs in them.
//
// Calling it at the top of main() keeps the older behaviour: exec'd workers and the forkserver
// run main() up to this call, then become what they were started for (so what main() set up
// before it is set up in every process). It is needed only where crew is a shared library (or
// linked into one): there the executable's initializers run after crew's, so a worker cannot be
// entered before main, and a spawn or forkserver pool made without init throws
// std::logic_error saying so. In a normal run it records argv and returns; in a worker it never
// returns. Harmless when no pool needs it. Not thread-safe: call it before starting threads.
#pragma once

namespace crew {

void init(int argc, char** argv);

}  // namespace crew
