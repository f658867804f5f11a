// maintenance::Cleaner: deletes finished jobs after the retention period.
//
// Completed, cancelled and discarded jobs whose finished_at is older than
// `retention_ms` are deleted, at most `batch` per transaction so that a large
// backlog never holds the write lock for long. Running, available and
// retryable jobs are never touched, whatever their age.
//
// run_once() reads first and takes the write lock only when there is
// something to delete. The Supervisor runs it every `interval_ms` (pass()).
#pragma once

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "maintenance/service.h"

namespace maintenance {

struct CleanerOptions {
  core::Millis retention_ms = 7LL * 24 * 3600 * 1000;
  core::Millis interval_ms = 60000;
  int batch = 1000;
};

class Cleaner final : public Service {
 public:
  Cleaner(db::Database& db, const core::Clock& clock, CleanerOptions options = {})
      : db_(db), clock_(clock), options_(options) {}

  // Deletes every job finished before now - retention; returns how many.
  core::Result<int> run_once();

  std::string_view name() const noexcept override { return "cleaner"; }
  core::Millis interval_ms() const noexcept override { return options_.interval_ms; }
  bool leader_only() const noexcept override { return true; }
  core::Status pass() override { return run_once().status(); }

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const CleanerOptions options_;
};

}  // namespace maintenance
