// The maintenance commands of the binary, working on a database file
// directly (the server may be running: SQLite's locking and BEGIN IMMEDIATE
// keep both correct). Each returns the process exit code: 0 done, 1 refused
// or failed (the reason on stderr), and prints its result on stdout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace app {

struct DbTarget {
  std::string path = "aftercommit.db";  // --db
  int busy_timeout_ms = 1000;           // --busy-timeout
  int max_attempts = 3;                 // --max-attempts
};

// Creates the file if missing, applies pending migrations, prints the version.
int cmd_migrate(const DbTarget& target);

struct JobsListOptions {
  std::optional<std::string> state;
  std::optional<std::string> kind;
  int limit = 50;
  bool json = false;  // one JSON object per line (API shape) instead of a table
};
int cmd_jobs_list(const DbTarget& target, const JobsListOptions& options);
// retry: discarded|cancelled -> available; cancel: available|retryable -> cancelled.
int cmd_jobs_transition(const DbTarget& target, std::int64_t id, bool retry, bool json);

int cmd_stats(const DbTarget& target, bool json);

}  // namespace app
