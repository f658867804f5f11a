// `aftercommit backup` and `aftercommit restore`, and serve's --backup-*
// flags. Kept apart from cli/cli.cpp so that the command line's main table
// stays small; cli.cpp calls the three functions below.
//
//   aftercommit backup  --db PATH --to FILE   a consistent online copy (db/sqlite/backup.h)
//   aftercommit restore --from FILE --db PATH refused while a server runs on PATH
//
// A running server is recognised by its connections: they keep SQLite's
// shared lock on the file for the server's whole life, and db::sqlite::restore's
// exclusive claim needs every other connection gone.
// Exit codes as cli/commands.h: 0 done, 1 refused or failed (the reason on
// stderr), 2 a bad flag.
#pragma once

#include <optional>
#include <string>

#include "app/config.h"
#include "cli/commands.h"
#include "db/sqlite/backup.h"

namespace CLI {
class App;
}

namespace app {

struct BackupCli {
  CLI::App* backup_cmd = nullptr;
  CLI::App* restore_cmd = nullptr;
  DbTarget target;
  std::string to;    // backup --to
  std::string from;  // restore --from
  int step_pages = 1024;
  std::string step_pause = "20ms";
  std::string backup_every = "6h";  // serve --backup-every, parsed by apply_backup_flags
};

// Adds the backup and restore commands, and --backup-dir/--backup-every/
// --backup-keep to `serve_cmd`.
void add_backup_commands(CLI::App& cli, CLI::App& serve_cmd, Config& cfg, BackupCli& b);

// After parsing: the exit code when backup or restore was the command.
std::optional<int> run_backup_commands(const BackupCli& b);

// For serve: puts --backup-every into cfg. Returns false, with the message on
// stderr, when it is not a duration.
bool apply_backup_flags(const BackupCli& b, Config& cfg);

int cmd_backup(const DbTarget& target, const std::string& to,
               const db::sqlite::CopyOptions& options);
int cmd_restore(const DbTarget& target, const std::string& from,
                const db::sqlite::CopyOptions& options);

}  // namespace app
