// Guarantees over time (docs/RELIABILITY.md, "Over time"): what must still
// hold once the cleaner has deleted finished jobs and the reaper has deleted
// idempotency keys.
//
// - Ids are never reused: a job created after the cleaner deleted the newest
//   jobs gets a new id, and its effect lands (the real binary with
//   --job-retention 0); a job whose mailbox slot holds another message is
//   not completed.
// - The reaper never deletes an unfinished or locked key; a TTL shorter than
//   the completer's delay plus the lock timeout is refused at start-up; a
//   retry of a key in flight gets 409, also past its TTL.
// - The key checkout sends to the gateway is our own, per operation: a
//   client key used again after its record was reaped is a new order with
//   a new charge, and a charge made for another order never pays one.
//
// The checkout cases run the in-process server with a ManualClock and the
// fake gateway on its own port. The test moves keys through the completer's
// and reaper's run_once(); their background passes first run 10 s and 60 s
// after start-up, after a case is over.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include "http/idempotency.h"

#include "db/conn.h"
#include "db/idempotency.h"
#include "db/sqlite/driver.h"
#include "db/users.h"
#include "jobs/handler.h"
#include "services/checkout.h"
#include "tests/support/harness.h"
#include "tests/support/jobs_fixture.h"

using testing::request;

namespace {

constexpr core::Millis kStart = 1'800'000'000'000;

std::string checkout_body(const std::string& token) {
  return nlohmann::json{{"email", "buyer@example.com"},
                        {"phone", "+15550100200"},
                        {"items",
                         {{{"sku", "mug"}, {"quantity", 2}, {"unit_price_cents", 1250}},
                          {{"sku", "tee"}, {"quantity", 1}, {"unit_price_cents", 1999}}}},
                        {"payment_token", token}}
      .dump();
}
constexpr std::int64_t kTotal = 2 * 1250 + 1999;

struct CheckoutFixture {
  testing::TempDir dir;
  core::ManualClock clock{kStart};
  app::Config config = [this] {
    app::Config c = testing::test_config(dir);
    c.fake_gateway = true;
    // Long enough for a test to act while a checkout waits on tok_timeout.
    c.gateway_timeout_ms = 1500;
    c.completer_after_ms = 60'000;
    c.idempotency_lock_timeout_ms = 30'000;
    c.idempotency_ttl_ms = 3'600'000;
    return c;
  }();
  testing::InProcessServer server{config, &clock};
  httplib::Client http = server.client();
  httplib::Client gateway{server.app().fake_gateway_url()};

  testing::HttpResult checkout(const std::string& body, const std::string& key) {
    return request(http, "POST", "/checkout", body, "application/json", {{"Idempotency-Key", key}});
  }
  nlohmann::json charges() {
    auto r = request(gateway, "GET", "/v1/charges");
    REQUIRE(r.status == 200);
    return r.json()["charges"];
  }
  nlohmann::json order(std::int64_t id) {
    auto r = request(http, "GET", "/orders/" + std::to_string(id));
    REQUIRE(r.status == 200);
    return r.json();
  }
  std::optional<db::IdempotencyKeyRow> key_row(const std::string& key) {
    std::optional<db::IdempotencyKeyRow> row;
    REQUIRE(server.app()
                .db()
                .read([&](db::Conn& c) {
                  row = db::find_idempotency_key(c, app::kAnonymousScope, key);
                  return core::Status::ok();
                })
                .is_ok());
    return row;
  }
  int reap() {
    auto reaped = server.app().key_reaper().run_once();
    REQUIRE(reaped.is_ok());
    return *reaped;
  }
  // A checkout of `body` under `key` whose first attempt created its order
  // and stopped before the charge (its client gave up): the key is at
  // order_created, unlocked. `gateway_key`, when given, replaces the one the
  // row got, as a row from before schema 5 would have it.
  std::int64_t abandoned_checkout(const std::string& key, const std::string& body,
                                  const std::optional<std::string>& gateway_key = std::nullopt) {
    const app::KeyRef ref{app::kAnonymousScope, key, "POST", "/checkout",
                          app::request_fingerprint("POST", "/checkout", body)};
    std::int64_t order_id = 0;
    REQUIRE(server.app()
                .db()
                .write([&](db::Tx& tx) {
                  auto row = db::insert_started_key(tx, ref, clock.now_ms());
                  services::CheckoutRequest req;
                  REQUIRE_FALSE(services::validate_checkout(nlohmann::json::parse(body), &req));
                  order_id = server.app().context().checkout.create_order(tx, req);
                  db::set_recovery_point(tx, row.id, db::kPointOrderCreated, order_id);
                  db::unlock_key(tx, row.id);
                  if (gateway_key) {
                    // Test-only SQL through the seam for faults (Conn::exec):
                    // the same text on both engines.
                    tx.conn().exec("UPDATE idempotency_keys SET gateway_key = '" + *gateway_key +
                                   "' WHERE id = " + std::to_string(row.id));
                  }
                  return core::Status::ok();
                })
                .is_ok());
    return order_id;
  }
};

}  // namespace

// --- 1. ids are never reused -------------------------------------------------

TEST_CASE("a job created after the cleaner deleted the newest jobs gets a new id and its effect") {
  testing::TempDir dir;
  testing::ServerProcess server(testing::test_db(dir, "retention.db"), {"--job-retention", "0"});
  httplib::Client c = server.client();
  auto welcome = [&](const std::string& to) {
    return request(c, "GET", "/mailbox?to=" + to).json()["messages"];
  };
  REQUIRE(request(c, "PUT", "/users/a1%40example.com").status == 201);
  REQUIRE(request(c, "PUT", "/users/a2%40example.com").status == 201);
  REQUIRE(testing::eventually([&] {
    return welcome("a1@example.com").size() == 1 && welcome("a2@example.com").size() == 1;
  }));
  // Retention 0: the cleaner deletes every finished job, the newest included.
  REQUIRE(testing::eventually([&] { return request(c, "GET", "/jobs").json()["jobs"].empty(); }));

  REQUIRE(request(c, "PUT", "/users/b1%40example.com").status == 201);
  REQUIRE(testing::eventually([&] { return welcome("b1@example.com").size() == 1; }));
  auto b1 = welcome("b1@example.com")[0];
  CHECK(b1["subject"] == "Welcome");
  const auto a1_job = welcome("a1@example.com")[0]["job_id"].get<std::int64_t>();
  const auto a2_job = welcome("a2@example.com")[0]["job_id"].get<std::int64_t>();
  CHECK(a1_job != a2_job);
  CHECK(b1["job_id"].get<std::int64_t>() > std::max(a1_job, a2_job));
  CHECK(server.terminate_and_wait() == 0);
}

TEST_CASE_FIXTURE(testing::JobsFixture,
                  "a job whose mailbox slot holds another message is not completed") {
  jobs::register_builtin_handlers(registry);
  REQUIRE(db->write([&](db::Tx& tx) {
              (void)db::insert_user_if_absent(tx, "b1@example.com", clock.now_ms());
              return core::Status::ok();
            }).is_ok());
  const std::int64_t id =
      stage("send_welcome_email", {{"user_id", 1}, {"email", "b1@example.com"}});
  // What a reused id looked like: the slot of job `id` already holds a
  // message another job (of the same id, since deleted) delivered.
  REQUIRE(db->write([&](db::Tx& tx) {
              return db::deliver_message(tx, {"email", "a1@example.com", "Welcome", "hi a1", id},
                                         clock.now_ms());
            }).is_ok());
  run_once();
  const db::JobRow row = job(id);
  CHECK(row.state != "completed");
  CHECK(errors(id).dump().find("another message") != std::string::npos);
  CHECK(mailbox("b1@example.com").empty());

  // A second run of a job that did deliver finds its own message: done.
  const std::int64_t again =
      stage("send_welcome_email", {{"user_id", 1}, {"email", "b1@example.com"}});
  CHECK(again > id);
  REQUIRE(db->write([&](db::Tx& tx) {
              return db::deliver_message(
                  tx,
                  {"email", "b1@example.com", "Welcome",
                   "Welcome to aftercommit, b1@example.com! Your account is ready.", again},
                  clock.now_ms());
            }).is_ok());
  run_once();
  CHECK(job(again).state == "completed");
  CHECK(mailbox("b1@example.com").size() == 1);
}

// --- 2. the reaper and keys in use ------------------------------------------

TEST_CASE("refuses an idempotency TTL shorter than the completer's delay plus the lock timeout" *
          doctest::test_suite("variant_independent")) {
  testing::TempDir dir;
  const std::string path = dir.file("never.db");
  auto [code, out] = testing::run_binary({"serve", "--db", path, "--port", "0", "--idempotency-ttl",
                                          "1s", "--completer-after", "2000"});
  CAPTURE(out);
  CHECK(code == 2);
  CHECK(out.find("--idempotency-ttl") != std::string::npos);
  CHECK(out.find("--completer-after") != std::string::npos);
  CHECK(out.find("--idempotency-lock-timeout") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(path));

  app::Config config;
  config.completer_after_ms = 2000;
  config.idempotency_lock_timeout_ms = 3000;
  config.idempotency_ttl_ms = 5000;
  CHECK(config.validate().is_ok());
  config.idempotency_ttl_ms = 4999;
  CHECK_FALSE(config.validate().is_ok());
}

TEST_CASE_FIXTURE(CheckoutFixture, "the reaper never deletes an unfinished or locked key") {
  const std::string body = checkout_body("tok_visa");
  const std::int64_t order_id = abandoned_checkout("unfinished", body);
  clock.advance(config.idempotency_ttl_ms * 10);
  CHECK(reap() == 0);
  REQUIRE(key_row("unfinished"));

  // Locked now by a retry in flight: still kept.
  REQUIRE(server.app()
              .db()
              .write([&](db::Tx& tx) {
                REQUIRE(db::lock_key(tx, key_row("unfinished")->id, clock.now_ms(), 0));
                return core::Status::ok();
              })
              .is_ok());
  clock.advance(config.idempotency_ttl_ms * 10);
  CHECK(reap() == 0);
  REQUIRE(key_row("unfinished"));
  CHECK(order(order_id)["state"] == "pending");

  // Finished by the completer (the lock went stale long ago): reaped a TTL
  // after it finished, not before.
  auto done = server.app().completer().run_once();
  REQUIRE(done.is_ok());
  CHECK(*done == 1);
  CHECK(order(order_id)["state"] != "pending");
  CHECK(reap() == 0);
  clock.advance(config.idempotency_ttl_ms + 1);
  CHECK(reap() == 1);
  CHECK_FALSE(key_row("unfinished"));
}

TEST_CASE_FIXTURE(CheckoutFixture,
                  "the completer resumes keys by their workflow and the reaper reaps both kinds") {
  // Each key names its workflow when it is opened.
  REQUIRE(request(http, "PUT", "/users/single%40example.com", "", "application/json",
                  {{"Idempotency-Key", "single"}})
              .status == 201);
  REQUIRE(checkout(checkout_body("tok_visa"), "paid").status == 201);
  REQUIRE(key_row("single"));
  CHECK(key_row("single")->workflow == "single_phase");
  CHECK_FALSE(key_row("single")->gateway_key);
  CHECK(key_row("paid")->workflow == "checkout");

  // Two abandoned checkouts; one is relabelled single_phase. The completer
  // goes by the workflow column, not by the path both keys share: it
  // resumes the checkout and leaves the other alone.
  const std::int64_t resumed = abandoned_checkout("resumed", checkout_body("tok_visa"));
  const std::int64_t left = abandoned_checkout("left", checkout_body("tok_visa"));
  REQUIRE(server.app()
              .db()
              .write([&](db::Tx& tx) {
                tx.conn().exec(
                    "UPDATE idempotency_keys SET workflow = 'single_phase' WHERE key = 'left'");
                return core::Status::ok();
              })
              .is_ok());
  REQUIRE(key_row("left")->path == "/checkout");
  clock.advance(config.completer_after_ms + 1);
  auto done = server.app().completer().run_once();
  REQUIRE(done.is_ok());
  CHECK(*done == 1);
  CHECK(order(resumed)["state"] != "pending");
  CHECK(order(left)["state"] == "pending");
  CHECK(key_row("resumed")->recovery_point == "finished");
  CHECK(key_row("left")->recovery_point == "order_created");

  // A TTL later the finished keys of both workflows are reaped; the
  // unfinished one stays, whatever its workflow.
  clock.advance(config.idempotency_ttl_ms + 1);
  CHECK(reap() == 3);
  CHECK_FALSE(key_row("single"));
  CHECK_FALSE(key_row("paid"));
  CHECK_FALSE(key_row("resumed"));
  CHECK(key_row("left"));
}

TEST_CASE_FIXTURE(CheckoutFixture,
                  "an abandoned tok_timeout checkout outlives its TTL and the completer pays it") {
  const std::string body = checkout_body("tok_timeout");
  auto first = checkout(body, "abandoned");
  REQUIRE(first.status == 503);
  CHECK(charges().size() == 1);  // charged at the gateway, answer lost
  clock.advance(config.idempotency_ttl_ms + 1);
  CHECK(reap() == 0);
  CHECK(order(1)["state"] == "pending");
  auto done = server.app().completer().run_once();
  REQUIRE(done.is_ok());
  CHECK(*done == 1);
  CHECK(order(1)["state"] != "pending");
  CHECK(order(1)["charge_id"] == charges()[0]["id"]);
  CHECK(charges().size() == 1);
}

TEST_CASE_FIXTURE(CheckoutFixture,
                  "a retry while the key's checkout is in flight gets 409, also past its TTL") {
  const std::string body = checkout_body("tok_timeout");
  const std::int64_t order_id = abandoned_checkout("in-flight", body);
  clock.advance(config.idempotency_ttl_ms + 1);  // created more than a TTL ago

  // The client's retry takes the lock and waits on the gateway (tok_timeout
  // answers after --gateway-timeout): in flight.
  testing::HttpResult retry;
  std::thread client([&] {
    httplib::Client c = server.client();
    retry = request(c, "POST", "/checkout", body, "application/json",
                    {{"Idempotency-Key", "in-flight"}});
  });
  REQUIRE(testing::eventually([&] { return charges().size() == 1; }));
  CHECK(reap() == 0);
  auto second = checkout(body, "in-flight");
  CHECK(second.status == 409);
  CHECK(second.json()["type"] == "/problems/idempotency-key-in-use");
  client.join();
  CHECK(retry.status == 503);

  auto last = checkout(body, "in-flight");
  CHECK(last.status == 201);
  CHECK(last.json()["id"] == order_id);
  CHECK(request(http, "GET", "/orders/" + std::to_string(order_id + 1)).status == 404);
  CHECK(charges().size() == 1);
}

// --- 3. our own key downstream; a charge pays only its order ----------------

TEST_CASE_FIXTURE(CheckoutFixture,
                  "a client key used again after its record was reaped buys a new charge") {
  const std::string body = checkout_body("tok_visa");
  auto first = checkout(body, "K");
  REQUIRE(first.status == 201);
  clock.advance(config.idempotency_ttl_ms + 1);
  REQUIRE(reap() == 1);

  auto second = checkout(body, "K");
  REQUIRE(second.status == 201);
  CHECK(second.header("Idempotent-Replayed").empty());
  CHECK(second.json()["id"] != first.json()["id"]);
  CHECK(second.json()["charge_id"] != first.json()["charge_id"]);

  auto all = charges();
  REQUIRE(all.size() == 2);
  std::set<std::string> paid_by{first.json()["charge_id"].get<std::string>(),
                                second.json()["charge_id"].get<std::string>()};
  std::set<std::string> gateway_keys;
  for (const auto& charge : all) {
    CHECK(paid_by.count(charge["id"].get<std::string>()) == 1);
    CHECK(charge["amount_cents"] == kTotal);
    CHECK(charge["idempotency_key"] != "K");
    gateway_keys.insert(charge["idempotency_key"].get<std::string>());
  }
  CHECK(gateway_keys.size() == 2);
  CHECK(key_row("K")->gateway_key == all[1]["idempotency_key"].get<std::string>());
}

TEST_CASE_FIXTURE(CheckoutFixture, "a charge of another amount never pays the order") {
  // A key from before schema 5 charges under the client's string, which a
  // reaped operation already used for 1.00 at the gateway.
  auto old = request(gateway, "POST", "/v1/charges",
                     nlohmann::json{{"amount_cents", 100}, {"token", "tok_visa"}}.dump(),
                     "application/json", {{"Idempotency-Key", "legacy"}});
  REQUIRE(old.status == 201);
  const std::string body = checkout_body("tok_visa");
  const std::int64_t order_id = abandoned_checkout("legacy", body, "legacy");

  auto r = checkout(body, "legacy");
  CHECK(r.status == 502);
  CHECK(r.json()["type"] == "/problems/payment-charge-mismatch");
  CHECK(order(order_id)["state"] == "payment_failed");
  CHECK(order(order_id)["charge_id"].is_null());
  auto again = checkout(body, "legacy");
  CHECK(again.status == 502);
  CHECK(again.header("Idempotent-Replayed") == "true");
  CHECK(request(http, "GET", "/jobs").json()["jobs"].empty());
  CHECK(charges().size() == 1);
}

TEST_CASE_FIXTURE(CheckoutFixture, "a charge that pays one order never pays another") {
  const std::string body = checkout_body("tok_visa");
  auto first = checkout(body, "first");
  REQUIRE(first.status == 201);
  const std::string first_gateway_key = *key_row("first")->gateway_key;
  clock.advance(config.idempotency_ttl_ms + 1);
  REQUIRE(reap() == 1);
  // Same amount, same gateway key: the gateway answers with order 1's charge.
  const std::int64_t order_id = abandoned_checkout("second", body, first_gateway_key);

  auto r = checkout(body, "second");
  CHECK(r.status == 502);
  CHECK(r.json()["type"] == "/problems/payment-charge-mismatch");
  CHECK(r.json()["detail"].get<std::string>().find("pays order 1") != std::string::npos);
  CHECK(order(order_id)["state"] == "payment_failed");
  CHECK(order(1)["charge_id"] == first.json()["charge_id"]);
  CHECK(charges().size() == 1);

  // The schema refuses it too, whatever the code does.
  auto direct = server.app().db().write([&](db::Tx& tx) {
    // Through the driver, so the engine's error is translated as any write's.
    tx.conn().exec("UPDATE orders SET state = 'paid', charge_id = '" +
                   first.json()["charge_id"].get<std::string>() +
                   "' WHERE id = " + std::to_string(order_id));
    return core::Status::ok();
  });
  CHECK(direct.code() == core::Code::kConflict);
  CHECK(order(order_id)["state"] == "payment_failed");
}
