#include "app/app.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include "core/log.h"
#include "db/idempotency.h"
#include "http/metrics.h"
#include "workers/webhooks.h"

namespace app {
namespace {

// Config::fake_gateway_db, defaulted as its comment says.
std::string fake_gateway_store_path(const Config& cfg) {
  if (!cfg.fake_gateway_db.empty()) return cfg.fake_gateway_db;
  if (cfg.db_path.find("://") != std::string::npos) return "aftercommit-fake-gateway.sqlite";
  return cfg.db_path + ".fake-gateway";
}

}  // namespace

App::App(const Config& config, const core::Clock& clock) : config_(config), clock_(clock) {}

App::~App() {
  if (server_) server_->stop();
  if (supervisor_) supervisor_->stop();
  if (runner_) runner_->stop();
  if (fake_gateway_) fake_gateway_->stop();
}

core::Result<std::unique_ptr<App>> App::create(const Config& config, const core::Clock& clock) {
  if (core::Status st = config.validate(); !st) return st;
  std::unique_ptr<App> app(new App(config, clock));
  const Config& cfg = app->config_;
  core::log::set_format(cfg.log_format);
  register_metrics();

  db::Options options;
  db::set_target(options, cfg.db_path);
  options.pool_size = cfg.db_pool;
  options.writers = cfg.db_writers;
  options.pg.lock_timeout_ms = cfg.busy_timeout_ms;
  options.pg.leader_ttl_ms = cfg.leader_ttl_ms;
  options.sqlite.synchronous = cfg.synchronous;
  options.sqlite.busy_timeout_ms = cfg.busy_timeout_ms;
  options.sqlite.max_page_count = cfg.max_db_pages;
  options.max_attempts = cfg.max_attempts;
  options.commit_mode = cfg.commit_mode;
  auto opened = db::Database::open(options);
  if (!opened) return opened.status();
  app->db_ = std::move(*opened);

  jobs::register_builtin_handlers(app->registry_);
  jobs::register_webhook_handler(app->registry_, clock,
                                 jobs::WebhookOptions{.secret = cfg.webhook_secret,
                                                      .timeout_ms = cfg.webhook_timeout_ms,
                                                      .ca_file = cfg.ca_file});
  if (core::Status st = jobs::save_kind_defaults(*app->db_, app->registry_); !st) {
    return core::Status(st.code(), "saving job kind defaults: " + st.message());
  }
  jobs::RunnerOptions runner_options;
  runner_options.lease_ms = cfg.job_lease_ms;
  runner_options.workers = cfg.workers > 0
                               ? cfg.workers
                               : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  runner_options.batch = std::max(runner_options.batch, 2 * runner_options.workers);
  runner_options.backoff_base_ms = cfg.job_backoff_base_ms;
  runner_options.backoff_cap_ms = cfg.job_backoff_cap_ms;
  runner_options.shutdown_timeout_ms = cfg.shutdown_timeout_ms;
  runner_options.test_delay_ms = cfg.test_job_delay_ms;
  runner_options.poll_interval_ms = cfg.test_job_poll_ms;
  app->runner_ = std::make_unique<jobs::Runner>(*app->db_, app->registry_, clock, runner_options);
  // The rescuer looks a few times per lease, so an expired lease is noticed
  // within about a third of a lease.
  app->rescuer_ = std::make_unique<maintenance::Rescuer>(
      *app->db_, clock,
      maintenance::RescuerOptions{std::max<core::Millis>(50, cfg.job_lease_ms / 3)});
  // The cleaner looks ten times per retention period (at least every 100 ms,
  // at most every minute), so a short retention is honoured promptly.
  maintenance::CleanerOptions cleaner_options;
  cleaner_options.retention_ms = cfg.job_retention_ms;
  cleaner_options.interval_ms = std::clamp<core::Millis>(cfg.job_retention_ms / 10, 100, 60'000);
  app->cleaner_ = std::make_unique<maintenance::Cleaner>(*app->db_, clock, cleaner_options);
  jobs::Runner* runner = app->runner_.get();
  runner->set_observer(record_job_attempt);
  app->db_->set_commit_listener([runner](const db::CommitInfo& info) {
    if (info.wake) runner->notify();
  });
  // Jobs another node staged (PostgreSQL's NOTIFY): woken at once as well;
  // the runner's poll stays the safety net for a hint lost on the way.
  app->job_listener_ = app->db_->listen([runner] { runner->notify(); });

  // Start-up recovery takes over only what is provably abandoned: another
  // process may be serving this file right now (docs/RELIABILITY.md "Across
  // processes"), and nothing local (no lock, no pid file) proves it dead.
  // A job is abandoned when its lease expired (a live runner heartbeats it);
  // a key lock when it is older than --idempotency-lock-timeout (what a
  // request or the completer would take over anyway). A process killed just
  // now gets its jobs back once their lease ends, from whichever rescuer runs.
  auto rescued = app->rescuer_->run_once();
  if (!rescued)
    return core::Status(rescued.status().code(), "rescuing jobs: " + rescued.status().message());
  if (*rescued > 0)
    core::log::warn("jobs_rescued", {{"count", *rescued}, {"reason", "lease expired"}});
  {
    int released = 0;
    const core::Millis stale_before = clock.now_ms() - cfg.idempotency_lock_timeout_ms;
    core::Status st = app->db_->write([&](db::Tx& tx) {
      released = db::release_stale_key_locks(tx, stale_before);
      return core::Status::ok();
    });
    if (!st) return core::Status(st.code(), "releasing idempotency keys: " + st.message());
    if (released > 0)
      core::log::warn("key_locks_released",
                      {{"count", released}, {"reason", "older than --idempotency-lock-timeout"}});
  }

  if (cfg.fake_gateway) {
    tools::FakeGatewayOptions gateway_options;
    gateway_options.bind = cfg.bind;
    gateway_options.port = cfg.fake_gateway_port;
    // tok_timeout answers well after checkout's client gave up.
    gateway_options.slow_answer_ms = cfg.gateway_timeout_ms + 1000;
    gateway_options.store_path = fake_gateway_store_path(cfg);
    app->fake_gateway_ = std::make_unique<tools::FakeGateway>(clock, gateway_options);
    auto gateway_port = app->fake_gateway_->start();
    if (!gateway_port) return gateway_port.status();
    if (app->config_.payment_gateway_url.empty()) {
      app->config_.payment_gateway_url = app->fake_gateway_->url();
    }
  }

  ContextOptions services;
  services.webhook_urls = cfg.webhook_urls;
  services.payment_gateway_url = cfg.payment_gateway_url;
  services.gateway_timeout_ms = cfg.gateway_timeout_ms;
  services.ca_file = cfg.ca_file;
  services.checkout_flow =
      workflow::CheckoutOptions{cfg.idempotency_lock_timeout_ms, cfg.test_crash_after};
  app->ctx_ = std::make_unique<Context>(services, *app->db_, clock);
  workflow::CompleterOptions completer_options;
  completer_options.after_ms = cfg.completer_after_ms;
  completer_options.lock_timeout_ms = cfg.idempotency_lock_timeout_ms;
  completer_options.interval_ms = std::clamp<core::Millis>(cfg.completer_after_ms / 4, 20, 10'000);
  app->completer_ = std::make_unique<workflow::Completer>(
      *app->db_, app->ctx_->checkout_flow.workflow(), clock, completer_options);
  maintenance::KeyReaperOptions reaper_options;
  reaper_options.ttl_ms = cfg.idempotency_ttl_ms;
  reaper_options.interval_ms = std::clamp<core::Millis>(cfg.idempotency_ttl_ms / 10, 100, 60'000);
  app->key_reaper_ = std::make_unique<maintenance::KeyReaper>(*app->db_, clock, reaper_options);
  if (!cfg.backup_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.backup_dir, ec);
    if (ec || ::access(cfg.backup_dir.c_str(), W_OK) != 0)
      return core::Status::invalid("--backup-dir: cannot write to " + cfg.backup_dir);
    app->backups_ = std::make_unique<maintenance::BackupSchedule>(
        clock, maintenance::BackupScheduleOptions{cfg.db_path, cfg.backup_dir, cfg.backup_every_ms,
                                                  cfg.backup_keep, db::sqlite::CopyOptions{}});
  }
  // Start order; stopped in reverse (maintenance/supervisor.h).
  auto leader = app->db_->leader_lock();
  if (!leader) return leader.status();
  app->leader_ = std::move(*leader);
  // The elector asks a few times per lease: the leader renews it in time
  // and a follower takes a lapsed one within a fifth of a lease.
  app->supervisor_ = std::make_unique<maintenance::Supervisor>(
      app->leader_.get(), std::clamp<core::Millis>(cfg.leader_ttl_ms / 5, 40, 1000));
  app->supervisor_->add(*app->rescuer_);
  app->supervisor_->add(*app->cleaner_);
  app->supervisor_->add(*app->completer_);
  app->supervisor_->add(*app->key_reaper_);
  if (app->backups_) app->supervisor_->add(*app->backups_);
  if (!cfg.tls_cert_path.empty()) {
    auto tls = TlsServerContext::open(cfg.tls_cert_path, cfg.tls_key_path);
    if (!tls) return tls.status();
    app->tls_ = std::move(*tls);
  }
  ServerOptions http;
  http.bind = cfg.bind;
  http.port = cfg.port;
  http.http_threads = cfg.http_threads;
  http.max_connections = cfg.max_connections;
  http.limits.max_header_bytes = cfg.max_header_bytes;
  http.limits.max_headers = cfg.max_headers;
  http.limits.max_body_bytes = cfg.max_body_bytes;
  http.limits.read_timeout_ms = cfg.read_timeout_ms;
  http.limits.idle_timeout_ms = cfg.idle_timeout_ms;
  http.idempotency_lock_timeout_ms = cfg.idempotency_lock_timeout_ms;
  http.admin_token = cfg.admin_token;
  app->server_ = std::make_unique<Server>(std::move(http), *app->ctx_, app->tls_.get());
  auto port = app->server_->bind();
  if (!port) return port.status();
  app->port_ = *port;
  return app;
}

std::string App::fake_gateway_url() const {
  return fake_gateway_ ? fake_gateway_->url() : "";
}

std::string App::url() const {
  return (tls_ ? "https://" : "http://") + config_.bind + ":" + std::to_string(port_);
}

void App::reload() {
  if (!tls_) {
    core::log::info("reload", {{"signal", "SIGHUP"}, {"detail", "no TLS certificate to reload"}});
    return;
  }
  auto reloaded = tls_->reload();
  if (!reloaded) {
    core::log::error("tls_reload_failed",
                     {{"error", reloaded.status().message()},
                      {"detail", "the certificate in use stays: " + tls_->info().subject +
                                     " until " + tls_->info().not_after}});
    return;
  }
  core::log::info("tls_reloaded", {{"subject", reloaded->subject},
                                   {"serial", reloaded->serial},
                                   {"not_after", reloaded->not_after}});
}

void App::serve() {
  serving_ = true;
  runner_->start();
  supervisor_->start();
  // returns after stop(), once in-flight requests finished
  if (!stop_requested_) server_->listen();
  serving_ = false;
  supervisor_->stop();  // cancels a backup in progress
  leader_->resign();    // another process leads at its next pass
  // Stop claiming, let running jobs finish up to --shutdown-timeout.
  runner_->stop();
}

void App::request_stop() {
  stop_requested_ = true;
  // serve() may be between its check and listen(): wait until the server runs
  // so that stop() takes effect (stop() on a server not yet running is a no-op).
  for (int i = 0; i < 5000 && serving_ && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
}

}  // namespace app
