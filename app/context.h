// app::Context: what route handlers may use. Built once by app::App; every
// member outlives the HTTP server.
#pragma once

#include "app/checkout_flow.h"
#include "app/config.h"
#include "core/clock.h"
#include "db/database.h"
#include "jobs/outbox.h"
#include "services/anagrams.h"
#include "services/checkout.h"
#include "services/jobs_admin.h"
#include "services/payment_gateway.h"
#include "services/products.h"
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
        products(database, clk, outbox),
        anagrams(database, clk),
        gateway(cfg.payment_gateway_url, cfg.gateway_timeout_ms, cfg.ca_file),
        checkout(database, clk, outbox, gateway),
        checkout_flow(database, clk, checkout,
                      CheckoutFlowOptions{cfg.idempotency_lock_timeout_ms, cfg.test_crash_after}),
        stats(database) {}

  const Config& config;
  db::Database& db;
  const core::Clock& clock;
  jobs::Outbox outbox;
  services::Users users;
  services::JobsAdmin jobs_admin;
  services::Products products;
  services::Anagrams anagrams;
  services::PaymentGateway gateway;  // URL fixed before the server starts
  services::Checkout checkout;
  CheckoutFlow checkout_flow;
  services::Stats stats;
};

}  // namespace app
