// doctest's runner and main(), compiled once for every suite: each suite
// compiling them itself cost ~6.5 s of CPU per suite under the sanitizers
// (36 suites, ~4 min of a cold `make test` build on 2 cores).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
