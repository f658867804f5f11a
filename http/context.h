// app::Context: what route handlers may use. Built once by app::App; every
// member outlives the HTTP server.
#pragma once

#include <string>
#include <vector>
#include "http/checkout_flow.h"

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

// What the composition root (app::App) reads from the configuration for
// the services below.
struct ContextOptions {
  std::vector<std::string> webhook_urls;
  std::string payment_gateway_url;  // empty: checkout answers 503
  core::Millis gateway_timeout_ms = 2000;
  std::string ca_file;  // trusted CAs for https:// gateway URLs (empty: the system store)
  CheckoutFlowOptions checkout_flow;
};

struct Context {
  Context(const ContextOptions& options, db::Database& database, const core::Clock& clk)
      : db(database),
        clock(clk),
        outbox(options.webhook_urls),
        users(database, clk, outbox),
        jobs_admin(database, clk),
        products(database, clk, outbox),
        anagrams(database, clk),
        gateway(options.payment_gateway_url, options.gateway_timeout_ms, options.ca_file),
        checkout(database, clk, outbox, gateway),
        checkout_flow(database, clk, checkout, options.checkout_flow),
        stats(database) {}

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
