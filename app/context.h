// app::Context: what route handlers may use. Built once by app::App; every
// member outlives the HTTP server.
#pragma once

#include "app/config.h"
#include "core/clock.h"
#include "db/database.h"
#include "jobs/outbox.h"
#include "services/jobs_admin.h"
#include "services/stats.h"
#include "services/users.h"

namespace app {

struct Context {
  Context(const Config& cfg, db::Database& database, const core::Clock& clk)
      : config(cfg),
        db(database),
        clock(clk),
        outbox(cfg.webhook_urls),
        users(database, clk, outbox),
        jobs_admin(database, clk),
        stats(database) {}

  const Config& config;
  db::Database& db;
  const core::Clock& clock;
  jobs::Outbox outbox;
  services::Users users;
  services::JobsAdmin jobs_admin;
  services::Stats stats;
};

}  // namespace app
