// The command line: `aftercommit serve [flags]`, --help, --version.
// Every flag has an AFTERCOMMIT_* environment variable (flags win).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "app/config.h"

namespace app {

// Parses argv. Calls `serve` with the validated config for `serve`. Returns
// the process exit code: 0 for --help/--version, 2 for a bad flag (with a
// message naming it on stderr), else what `serve` returned.
// "500ms", "2s", "5m", "24h", or a bare number of milliseconds.
std::optional<core::Millis> parse_duration_ms(const std::string& text);

int run_cli(int argc, char** argv, const std::function<int(const Config&)>& serve);

}  // namespace app
