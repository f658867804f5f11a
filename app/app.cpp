#include "app/app.h"

#include <chrono>
#include <cstdio>
#include <thread>

namespace app {

App::App(const Config& config, const core::Clock& clock) : config_(config), clock_(clock) {}

App::~App() {
  if (server_) server_->stop();
  if (runner_) runner_->stop();
}

core::Result<std::unique_ptr<App>> App::create(const Config& config, const core::Clock& clock) {
  if (core::Status st = config.validate(); !st) return st;
  std::unique_ptr<App> app(new App(config, clock));
  const Config& cfg = app->config_;

  db::Options options;
  options.path = cfg.db_path;
  options.synchronous = cfg.synchronous;
  options.busy_timeout_ms = cfg.busy_timeout_ms;
  options.max_attempts = cfg.max_attempts;
  options.max_page_count = cfg.max_db_pages;
  auto opened = db::Database::open(options);
  if (!opened) return opened.status();
  app->db_ = std::move(*opened);

  jobs::register_builtin_handlers(app->registry_);
  jobs::RunnerOptions runner_options;
  runner_options.lease_ms = cfg.job_lease_ms;
  runner_options.test_delay_ms = cfg.test_job_delay_ms;
  app->runner_ = std::make_unique<jobs::Runner>(*app->db_, app->registry_, clock, runner_options);
  jobs::Runner* runner = app->runner_.get();
  app->db_->set_commit_listener([runner](const db::CommitInfo& info) {
    if (info.jobs_staged) runner->notify();
  });

  // Holding the runner lock proves no other runner is alive, so jobs left
  // `running` are orphans of a process that died: rescue them now rather than
  // after their lease. Without it, only expired leases are rescued.
  app->runner_lock_ = std::make_unique<jobs::RunnerLock>(jobs::RunnerLock::acquire(cfg.db_path));
  auto rescued = runner->rescue(/*all_running=*/app->runner_lock_->held());
  if (!rescued)
    return core::Status(rescued.status().code(), "rescuing jobs: " + rescued.status().message());
  if (*rescued > 0)
    std::fprintf(stderr, "rescued %d job(s) left running by a previous process\n", *rescued);

  app->ctx_ = std::make_unique<Context>(cfg, *app->db_, clock);
  app->server_ = std::make_unique<Server>(cfg, *app->ctx_);
  auto port = app->server_->bind();
  if (!port) return port.status();
  app->port_ = *port;
  return app;
}

std::string App::url() const {
  return "http://" + config_.bind + ":" + std::to_string(port_);
}

void App::serve() {
  serving_ = true;
  runner_->start();
  // returns after stop(), once in-flight requests finished
  if (!stop_requested_) server_->listen();
  serving_ = false;
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
