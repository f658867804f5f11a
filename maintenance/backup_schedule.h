// maintenance::BackupSchedule: `serve --backup-dir DIR --backup-every D --backup-keep N`.
//
// Every `every_ms` it writes a consistent online copy of the server's
// database (db::sqlite::backup: a pinned snapshot copied in steps, checked, fsynced,
// renamed into place) to DIR/aftercommit-YYYYMMDDTHHMMSS.mmmZ.db (UTC; the
// names sort in time order), then deletes the oldest files of that exact
// pattern beyond `keep`. Nothing else in DIR is ever touched.
//
// A failed backup (full disk, unwritable directory, I/O error) is logged as
// `backup_failed`, counted in aftercommit_backups_total{outcome="failed"},
// and the server goes on; the next run tries again. Nothing here can stop
// the server. cancel() (the Supervisor's stop) ends a backup in progress
// between two steps (its temporary file is deleted), so shutdown never waits
// for a large copy; it is final: later passes are cancelled at once.
//
// Threads: the Supervisor runs pass() every `every_ms` on its own thread, or
// a test calls run_once() on its own; cancel() from any thread.
#pragma once

#include <atomic>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "db/sqlite/backup.h"
#include "maintenance/service.h"

namespace maintenance {

struct BackupScheduleOptions {
  std::string db_path;
  std::string dir;
  core::Millis every_ms = 6LL * 3600 * 1000;
  int keep = 8;
  db::sqlite::CopyOptions copy;  // steps and pauses; `cancelled` is set by the schedule
};

class BackupSchedule final : public Service {
 public:
  BackupSchedule(const core::Clock& clock, BackupScheduleOptions options);
  BackupSchedule(const BackupSchedule&) = delete;
  BackupSchedule& operator=(const BackupSchedule&) = delete;

  std::string_view name() const noexcept override { return "backup"; }
  core::Millis interval_ms() const noexcept override { return options_.every_ms; }
  // run_once(); its outcome is logged and counted there, so a failed backup
  // is not reported to the supervisor a second time.
  core::Status pass() override {
    (void)run_once();
    return core::Status::ok();
  }
  void cancel() noexcept override { stopping_ = true; }

  // One backup and one pruning; returns the path written. Logs and counts
  // its outcome either way.
  [[nodiscard]] core::Result<std::string> run_once();

  // "aftercommit-20261130T010203.456Z.db" for that UTC time.
  static std::string file_name(core::Millis epoch_ms);

 private:
  // Deletes the oldest scheduled backups beyond `keep`; returns how many.
  int prune();

  const core::Clock& clock_;
  BackupScheduleOptions options_;
  std::atomic<bool> stopping_{false};
};

// Creates the aftercommit_backup* series so that they exist from the first scrape.
void register_backup_metrics();

}  // namespace maintenance
