// app::App: the whole program wired together: database, job runner, HTTP
// server. main() and the in-process integration tests both start one.
//
// Start-up order: open + migrate the database, register the job kinds and
// save their defaults, rescue jobs whose lease expired and release key locks
// older than the lock timeout (never more: another process may be serving the
// same file), start the fake gateway when asked, bind; serve() starts the
// runner, then the supervisor's background services in this order: rescuer,
// cleaner, completer, key reaper (those four only while this process holds
// the engine's leader lock, db/leader.h), scheduled backups. Shutdown (request_stop,
// e.g. on SIGTERM): stop accepting and let in-flight requests finish, then
// stop the services in the reverse order (a backup in progress is
// cancelled) and resign leadership, then the runner: no more claims, running jobs may finish
// within --shutdown-timeout; what is left is rescued once its lease ends.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "app/config.h"
#include "core/clock.h"
#include "db/database.h"
#include "http/context.h"
#include "http/fake_gateway.h"
#include "http/server.h"
#include "http/tls.h"
#include "jobs/handler.h"
#include "jobs/runner.h"
#include "maintenance/backup_schedule.h"
#include "maintenance/cleaner.h"
#include "maintenance/key_reaper.h"
#include "maintenance/rescuer.h"
#include "maintenance/supervisor.h"
#include "workflow/completer.h"

namespace app {

class App {
 public:
  // Opens everything and binds the port; does not serve yet. `clock` must
  // outlive the App (tests pass a ManualClock).
  static core::Result<std::unique_ptr<App>> create(const Config& config, const core::Clock& clock);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const;
  // "http://ADDR:PORT" of the fake payment gateway; empty when not started.
  std::string fake_gateway_url() const;

  // Starts the runner and serves HTTP until request_stop(); blocks.
  void serve();
  // Thread-safe; makes serve() return after a graceful shutdown.
  void request_stop();
  // SIGHUP: re-reads --tls-cert and --tls-key (http/tls.h) and logs the
  // outcome; a bad pair is refused and the old one stays. Without TLS there
  // is nothing to reload (logged). Thread-safe.
  void reload();
  // Null unless serving HTTPS.
  TlsServerContext* tls() noexcept { return tls_.get(); }

  db::Database& db() noexcept { return *db_; }
  jobs::Runner& runner() noexcept { return *runner_; }
  maintenance::Rescuer& rescuer() noexcept { return *rescuer_; }
  maintenance::Cleaner& cleaner() noexcept { return *cleaner_; }
  const jobs::Registry& registry() const noexcept { return registry_; }
  Context& context() noexcept { return *ctx_; }
  workflow::Completer& completer() noexcept { return *completer_; }
  maintenance::KeyReaper& key_reaper() noexcept { return *key_reaper_; }
  // The background services' owner; tests wait on its passes.
  maintenance::Supervisor& supervisor() noexcept { return *supervisor_; }
  Server& server() noexcept { return *server_; }
  // Null unless --backup-dir was given.
  maintenance::BackupSchedule* backups() noexcept { return backups_.get(); }

 private:
  App(const Config& config, const core::Clock& clock);

  std::atomic<bool> serving_{false};
  std::atomic<bool> stop_requested_{false};
  Config config_;
  const core::Clock& clock_;
  std::unique_ptr<db::Database> db_;
  jobs::Registry registry_;
  std::unique_ptr<jobs::Runner> runner_;
  std::unique_ptr<tools::FakeGateway> fake_gateway_;
  std::unique_ptr<maintenance::Rescuer> rescuer_;
  std::unique_ptr<maintenance::Cleaner> cleaner_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<workflow::Completer> completer_;
  std::unique_ptr<maintenance::KeyReaper> key_reaper_;
  std::unique_ptr<TlsServerContext> tls_;  // before server_: it outlives it
  std::unique_ptr<Server> server_;
  std::unique_ptr<maintenance::BackupSchedule> backups_;
  // This process's claim to lead the leader-only services (db/leader.h).
  std::unique_ptr<db::LeaderLock> leader_;
  // Declared after the services it runs and the lock it asks: destroyed
  // (stopped) before them.
  std::unique_ptr<maintenance::Supervisor> supervisor_;
  // Other nodes' staged-job announcements (PostgreSQL; null on SQLite):
  // declared after the runner it wakes, so destroyed (its thread joined)
  // before it.
  std::unique_ptr<db::Listener> job_listener_;
  int port_ = 0;
};

}  // namespace app
