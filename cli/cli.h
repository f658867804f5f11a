// The command line: `aftercommit serve [flags]`, `migrate`, `jobs
// list|retry|cancel`, `stats`, --help (per command, with examples), --version.
// Every flag has an AFTERCOMMIT_* environment variable (flags win).
//
// Exit codes (README "Exit codes"; stable, tests/cli_test.cpp pins them):
//   0  done (also --help and --version)
//   1  the command ran and failed: the server could not start (database
//      refused, port taken), a job does not exist or is in another state
//   2  the command line or the configuration is wrong (unknown flag, a value
//      out of range, a bad URL or token, a TLS certificate or key that is
//      missing, unreadable, mismatched or expired): one line on stderr naming
//      the flag
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "app/config.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Logs `message` as the command's one error line (core::log::command_error)
// and returns kExitFailed: `return command_failed("...")`.
int command_failed(const std::string& message);

// "250ms", "30s", "5m", "24h", or a bare number of milliseconds.
std::optional<core::Millis> parse_duration_ms(const std::string& text);
// The shortest of those forms that is exact: 90000 -> "90s", 1500 -> "1500ms".
std::string format_duration(core::Millis ms);

// Adds a duration flag (and its environment variable, unless `env` is empty)
// to `cmd`: it takes every form parse_duration_ms() reads, must lie within
// [min_ms, max_ms], and is stored in milliseconds. Every duration flag of
// every command goes through this, so they all read the same way; a bad
// value fails the parse naming the flag (exit code 2).
CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name, int& into_ms,
                                 const std::string& description, const std::string& env,
                                 core::Millis min_ms, core::Millis max_ms);
CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name, std::int64_t& into_ms,
                                 const std::string& description, const std::string& env,
                                 core::Millis min_ms, core::Millis max_ms);

// Parses argv. Calls `serve` with the validated config for `serve`. Returns
// the process exit code (above): kExitUsage for a bad flag or configuration
// (with a message naming it on stderr), else what `serve` or the command
// returned (cli/commands.h).
int run_cli(int argc, char** argv, const std::function<int(const Config&)>& serve);

}  // namespace app
