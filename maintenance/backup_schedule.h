// app::BackupSchedule: `serve --backup-dir DIR --backup-every D --backup-keep N`.
//
// Every `every_ms` it writes a consistent online copy of the server's
// database (db::backup: a pinned snapshot copied in steps, checked, fsynced,
// renamed into place) to DIR/aftercommit-YYYYMMDDTHHMMSS.mmmZ.db (UTC; the
// names sort in time order), then deletes the oldest files of that exact
// pattern beyond `keep`. Nothing else in DIR is ever touched.
//
// A failed backup (full disk, unwritable directory, I/O error) is logged as
// `backup_failed`, counted in aftercommit_backups_total{outcome="failed"},
// and the server goes on; the next run tries again. Nothing here can stop
// the server. stop() cancels a backup in progress between two steps (its
// temporary file is deleted), so shutdown never waits for a large copy.
//
// Threads: start()/stop() from the owner; run_once() runs on the periodic
// thread, or on a test's thread instead of start().
#pragma once

#include <atomic>
#include <string>

#include "core/clock.h"
#include "core/periodic.h"
#include "core/status.h"
#include "db/backup.h"

namespace app {

struct BackupScheduleOptions {
  std::string db_path;
  std::string dir;
  core::Millis every_ms = 6LL * 3600 * 1000;
  int keep = 8;
  db::CopyOptions copy;  // steps and pauses; `cancelled` is set by the schedule
};

class BackupSchedule {
 public:
  BackupSchedule(const core::Clock& clock, BackupScheduleOptions options);
  ~BackupSchedule() { stop(); }
  BackupSchedule(const BackupSchedule&) = delete;
  BackupSchedule& operator=(const BackupSchedule&) = delete;

  void start();
  void stop();

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
  core::Periodic loop_;
};

// Creates the aftercommit_backup* series so that they exist from the first scrape.
void register_backup_metrics();

}  // namespace app
