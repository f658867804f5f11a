// maintenance::KeyReaper: deletes idempotency keys that finished more than
// --idempotency-ttl ago (rocket-rides-atomic's reaper). After that a client's
// retry with the same key is a new request, with a new order and a new
// gateway key (db/idempotency.h). Only finished key records go: a key that
// is unfinished or locked is a request's or the completer's work in
// progress and stays, however old (the completer finishes it). Orders, users
// and jobs stay.
//
// Threads: the Supervisor runs pass() every `interval_ms` on its own thread;
// tests call run_once() directly (with a ManualClock).
#pragma once

#include "core/clock.h"
#include "db/database.h"
#include "maintenance/service.h"

namespace maintenance {

struct KeyReaperOptions {
  core::Millis ttl_ms = 24LL * 60 * 60 * 1000;
  core::Millis interval_ms = 60'000;
  int batch = 1000;  // keys deleted per transaction, so writers are not held up
};

class KeyReaper final : public Service {
 public:
  KeyReaper(db::Database& db, const core::Clock& clock, KeyReaperOptions options)
      : db_(db), clock_(clock), options_(options) {}

  std::string_view name() const noexcept override { return "key_reaper"; }
  core::Millis interval_ms() const noexcept override { return options_.interval_ms; }
  bool leader_only() const noexcept override { return true; }
  core::Status pass() override { return run_once().status(); }

  // Deletes every key that finished more than ttl ago; returns how many.
  core::Result<int> run_once();

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const KeyReaperOptions options_;
};

}  // namespace maintenance
