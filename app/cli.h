// The command line: `aftercommit serve [flags]`, `migrate`, `jobs
// list|retry|cancel`, `stats`, --help (per command, with examples), --version.
// Every flag has an AFTERCOMMIT_* environment variable (flags win).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "app/config.h"

namespace app {

// "500ms", "2s", "5m", "24h", or a bare number of milliseconds.
std::optional<core::Millis> parse_duration_ms(const std::string& text);

// Parses argv. Calls `serve` with the validated config for `serve`. Returns
// the process exit code: 0 for --help/--version, 2 for a bad flag (with a
// message naming it on stderr), else what `serve` or the command returned
// (app/commands.h).
int run_cli(int argc, char** argv, const std::function<int(const Config&)>& serve);

}  // namespace app
