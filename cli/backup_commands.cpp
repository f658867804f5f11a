#include "cli/backup_commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "cli/cli.h"
#include "core/log.h"

namespace app {
namespace {

double mib(std::int64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

void add_step_flags(CLI::App* cmd, BackupCli& b) {
  cmd->add_option("--step-pages", b.step_pages,
                  "Pages copied per step; between steps writers have the disk to themselves")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--step-pause", b.step_pause,
                  "Pause between steps (e.g. 5ms; a bare number is ms); 0 copies flat out")
      ->capture_default_str();
}

std::optional<db::sqlite::CopyOptions> copy_options(const BackupCli& b) {
  auto pause = parse_duration_ms(b.step_pause);
  if (!pause) {
    core::log::command_error("--step-pause: '" + b.step_pause +
                             "' is not a duration (e.g. 0, 5ms, 1s)");
    return std::nullopt;
  }
  db::sqlite::CopyOptions o;
  o.pages_per_step = b.step_pages;
  o.pause_ms = *pause;
  o.busy_timeout_ms = b.target.busy_timeout_ms;
  return o;
}

}  // namespace

void add_backup_commands(CLI::App& cli, CLI::App& serve_cmd, Config& cfg, BackupCli& b) {
  auto add_db_flags = [&b](CLI::App* cmd) {
    cmd->add_option("--db", b.target.path, "SQLite database file")
        ->envname("AFTERCOMMIT_DB")
        ->capture_default_str();
    cmd->add_option("--busy-timeout", b.target.busy_timeout_ms,
                    "ms to wait for a lock another process (a running server) holds")
        ->envname("AFTERCOMMIT_BUSY_TIMEOUT")
        ->check(CLI::Range(0, 600000))
        ->capture_default_str();
  };

  b.backup_cmd = cli.add_subcommand(
      "backup", "Write a consistent copy of the database, also while a server writes to it");
  add_db_flags(b.backup_cmd);
  b.backup_cmd->add_option("--to", b.to, "The backup file (written whole, or not at all)")
      ->required();
  add_step_flags(b.backup_cmd, b);
  b.backup_cmd->footer(
      "The copy is one snapshot: every write acknowledged before it started is in it. It is\n"
      "written to a hidden temporary name, checked (integrity_check, schema version), fsynced\n"
      "and renamed onto --to; on any failure --to is left as it was. Exit code 1 on failure.\n"
      "Examples:\n"
      "  aftercommit backup --db /var/lib/aftercommit/aftercommit.db --to /backup/aftercommit.db\n"
      "  aftercommit backup --to backup.db --step-pages 256 --step-pause 20ms   # gentler");

  b.restore_cmd = cli.add_subcommand(
      "restore", "Replace the database with a checked backup; refused while a server runs on it");
  add_db_flags(b.restore_cmd);
  b.restore_cmd->add_option("--from", b.from, "The backup file (only read)")->required();
  add_step_flags(b.restore_cmd, b);
  b.restore_cmd->footer(
      "Checks the backup (integrity_check, a schema version this binary knows) on a copy next\n"
      "to --db, then swaps it in: stale -wal/-shm files are removed and the copy renamed onto\n"
      "--db. Refused (exit 1, nothing changed) while a server or any other connection has --db\n"
      "open. Jobs pending in the backup run when the server starts.\n"
      "Examples:\n"
      "  systemctl stop aftercommit\n"
      "  aftercommit restore --from /backup/aftercommit.db --db "
      "/var/lib/aftercommit/aftercommit.db\n"
      "  systemctl start aftercommit");

  serve_cmd
      .add_option("--backup-dir", cfg.backup_dir,
                  "Write scheduled online backups here (created if missing); off when empty")
      ->envname("AFTERCOMMIT_BACKUP_DIR");
  serve_cmd
      .add_option("--backup-every", b.backup_every,
                  "Time between scheduled backups (e.g. 6h, 30m; a bare number is ms)")
      ->envname("AFTERCOMMIT_BACKUP_EVERY")
      ->capture_default_str();
  serve_cmd
      .add_option("--backup-keep", cfg.backup_keep,
                  "Scheduled backups kept; older ones are deleted after each new one")
      ->envname("AFTERCOMMIT_BACKUP_KEEP")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
}

std::optional<int> run_backup_commands(const BackupCli& b) {
  if (!b.backup_cmd->parsed() && !b.restore_cmd->parsed()) return std::nullopt;
  auto options = copy_options(b);
  if (!options) return 2;
  if (b.backup_cmd->parsed()) return cmd_backup(b.target, b.to, *options);
  return cmd_restore(b.target, b.from, *options);
}

bool apply_backup_flags(const BackupCli& b, Config& cfg) {
  auto every = parse_duration_ms(b.backup_every);
  if (!every) {
    core::log::command_error("--backup-every: '" + b.backup_every +
                             "' is not a duration (e.g. 30m, 6h, 24h)");
    return false;
  }
  cfg.backup_every_ms = *every;
  return true;
}

int cmd_backup(const DbTarget& target, const std::string& to,
               const db::sqlite::CopyOptions& options) {
  auto report = db::sqlite::backup(target.path, to, options);
  if (!report) return command_failed(report.status().message());
  std::printf(
      "%s: backup written to %s (schema version %d, %.1f MiB, %d steps; copy %.1f s, check %.1f "
      "s)\n",
      target.path.c_str(), to.c_str(), report->schema_version, mib(report->bytes), report->steps,
      static_cast<double>(report->copy_ms) / 1e3, static_cast<double>(report->verify_ms) / 1e3);
  return 0;
}

int cmd_restore(const DbTarget& target, const std::string& from,
                const db::sqlite::CopyOptions& options) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(target.path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec))
    return command_failed("database directory " + dir.string() + " does not exist");
  // A running server is recognised by its open connections: db::sqlite::restore
  // claims the file with SQLite's exclusive lock, which a live connection of
  // any process (server, shell, maintenance command) refuses. (No lock file:
  // holding one was never proof of who else has the file open.)
  auto report = db::sqlite::restore(from, target.path, options);
  if (!report) return command_failed(report.status().message());
  std::printf(
      "%s: restored from %s (schema version %d, %.1f MiB); jobs pending in it run when the "
      "server starts\n",
      target.path.c_str(), from.c_str(), report->schema_version, mib(report->bytes));
  return 0;
}

}  // namespace app
