// app::Context: what route handlers may use. Built once by app::App; every
// member outlives the HTTP server.
#pragma once

#include "app/config.h"
#include "core/clock.h"
#include "db/database.h"
#include "services/jobs_admin.h"
#include "services/users.h"

namespace app {

struct Context {
  Context(const Config& cfg, db::Database& database, const core::Clock& clk)
      : config(cfg), db(database), clock(clk), users(database, clk), jobs_admin(database) {}

  const Config& config;
  db::Database& db;
  const core::Clock& clock;
  services::Users users;
  services::JobsAdmin jobs_admin;
};

}  // namespace app
