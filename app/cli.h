// The command line: `aftercommit serve [flags]`, `migrate`, `jobs
// list|retry|cancel`, `stats`, --help (per command, with examples), --version.
// Every flag has an AFTERCOMMIT_* environment variable (flags win).
#pragma once

#include <functional>

#include "app/config.h"

namespace app {

// Parses argv. Calls `serve` with the validated config for `serve`. Returns
// the process exit code: 0 for --help/--version, 2 for a bad flag (with a
// message naming it on stderr), else what `serve` or the command returned
// (app/commands.h).
int run_cli(int argc, char** argv, const std::function<int(const Config&)>& serve);

}  // namespace app
