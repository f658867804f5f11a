// jobs::Cleaner: deletes finished jobs after the retention period.
//
// Completed, cancelled and discarded jobs whose finished_at is older than
// `retention_ms` are deleted, at most `batch` per transaction so that a large
// backlog never holds the write lock for long. Running, available and
// retryable jobs are never touched, whatever their age.
//
// run_once() reads first and takes the write lock only when there is
// something to delete. start() runs it every `interval_ms` on its own thread.
#pragma once

#include "core/clock.h"
#include "core/periodic.h"
#include "core/status.h"
#include "db/database.h"

namespace jobs {

struct CleanerOptions {
  core::Millis retention_ms = 7LL * 24 * 3600 * 1000;
  core::Millis interval_ms = 60000;
  int batch = 1000;
};

class Cleaner {
 public:
  Cleaner(db::Database& db, const core::Clock& clock, CleanerOptions options = {})
      : db_(db), clock_(clock), options_(options) {}

  // Deletes every job finished before now - retention; returns how many.
  core::Result<int> run_once();

  void start();
  void stop() { loop_.stop(); }

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const CleanerOptions options_;
  core::Periodic loop_;
};

}  // namespace jobs
