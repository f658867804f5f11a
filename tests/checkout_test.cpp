// Checkout end to end over real HTTP: the in-process server with the fake
// payment gateway on its own port. Success, decline, timeout and flaky
// gateways with retries (one order, one charge, one SMS, ready_to_ship),
// validation, replay, mismatch, in-flight 409, concurrency, and the completer
// driven with a ManualClock.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "db/idempotency.h"
#include "http/idempotency.h"
#include "services/checkout.h"
#include "services/order_state.h"
#include "services/orders.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

constexpr core::Millis kStart = 1'800'000'000'000;

std::string checkout_body(const std::string& token, const std::string& phone = "+15550100200") {
  return nlohmann::json{{"email", "Buyer@Example.com"},
                        {"phone", phone},
                        {"items",
                         {{{"sku", "mug"}, {"quantity", 2}, {"unit_price_cents", 1250}},
                          {{"sku", "tee"}, {"quantity", 1}, {"unit_price_cents", 1999}}}},
                        {"payment_token", token}}
      .dump();
}

struct Fixture {
  testing::TempDir dir;
  core::ManualClock clock{kStart};
  app::Config config = [this] {
    app::Config c = testing::test_config(dir);
    c.fake_gateway = true;
    c.gateway_timeout_ms = 300;
    c.completer_after_ms = 60'000;  // the background pass runs every 10 s: tests drive run_once
    return c;
  }();
  testing::InProcessServer server{config, &clock};
  httplib::Client http = server.client();
  httplib::Client gateway{server.app().fake_gateway_url()};

  testing::HttpResult checkout(const std::string& body, const std::string& key) {
    return request(http, "POST", "/checkout", body, "application/json", {{"Idempotency-Key", key}});
  }
  // Charges at the gateway for the client's `key`: under the gateway key
  // its record holds (our own, never the client's string).
  int charges(const std::string& key) {
    std::optional<db::IdempotencyKeyRow> row;
    REQUIRE(server.app()
                .db()
                .read([&](db::Conn& c) {
                  row = db::find_idempotency_key(c, app::kAnonymousScope, key);
                  return core::Status::ok();
                })
                .is_ok());
    if (!row || !row->gateway_key) return 0;
    auto r = gateway.Get("/v1/charges?idempotency_key=" + *row->gateway_key);
    REQUIRE(r);
    return nlohmann::json::parse(r->body)["count"].get<int>();
  }
  // Charges at the gateway counted by the client's own key, as API.md has a
  // client do (GET /v1/charges?idempotency_key=<its key>).
  int client_charges(const std::string& key) {
    auto r = gateway.Get("/v1/charges?idempotency_key=" + key);
    REQUIRE(r);
    return nlohmann::json::parse(r->body)["count"].get<int>();
  }
  int all_charges() {
    auto r = gateway.Get("/v1/charges");
    REQUIRE(r);
    return nlohmann::json::parse(r->body)["count"].get<int>();
  }
  nlohmann::json order(std::int64_t id) {
    auto r = request(http, "GET", "/orders/" + std::to_string(id));
    REQUIRE(r.status == 200);
    return r.json();
  }
  nlohmann::json sms() {
    return request(http, "GET", "/mailbox?to=%2B15550100200").json()["messages"];
  }
  // Waits for the runner (its own thread) to run the staged jobs.
  void expect_shipped_once(std::int64_t id) {
    CHECK(testing::eventually([&] { return order(id)["state"] == "ready_to_ship"; }));
    CHECK(testing::eventually([&] { return sms().size() == 1; }));
    auto messages = sms();
    REQUIRE(messages.size() == 1);
    CHECK(messages[0]["channel"] == "sms");
    CHECK(messages[0]["to"] == "+15550100200");
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "charges once, answers 201 and ships with one SMS") {
  auto r = checkout(checkout_body("tok_visa"), "order-1");
  REQUIRE(r.status == 201);
  auto body = r.json();
  const auto id = body["id"].get<std::int64_t>();
  CHECK(r.header("Location") == "/orders/" + std::to_string(id));
  CHECK(body["state"] == "paid");
  CHECK(body["email"] == "buyer@example.com");
  CHECK(body["phone"] == "+15550100200");
  CHECK(body["total_cents"] == 2 * 1250 + 1999);
  CHECK(body["charge_id"].get<std::string>().rfind("ch_", 0) == 0);
  CHECK(body["items"].size() == 2);
  CHECK(body["items"][0] ==
        nlohmann::json{{"sku", "mug"}, {"quantity", 2}, {"unit_price_cents", 1250}});
  CHECK(body["created_at"].get<std::string>().size() == 24);

  expect_shipped_once(id);
  CHECK(charges("order-1") == 1);

  auto replayed = checkout(checkout_body("tok_visa"), "order-1");
  CHECK(replayed.status == 201);
  CHECK(replayed.body == r.body);
  CHECK(replayed.header("Location") == r.header("Location"));
  CHECK(replayed.header("Idempotent-Replayed") == "true");
  CHECK(charges("order-1") == 1);
  // Counted by the client's key too: the key sent downstream starts with it.
  CHECK(client_charges("order-1") == 1);
  CHECK(client_charges("order-") == 0);
  CHECK(request(http, "GET", "/jobs?kind=send_sms").json()["jobs"].size() == 1);
  CHECK(request(http, "GET", "/jobs?kind=prepare_for_shipping").json()["jobs"].size() == 1);
  CHECK(request(http, "GET", "/orders/" + std::to_string(id + 1)).status == 404);
}

TEST_CASE_FIXTURE(Fixture, "stores a 402 for a declined payment and stages nothing") {
  auto r = checkout(checkout_body("tok_declined"), "declined-1");
  REQUIRE(r.status == 402);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(r.json()["type"] == "/problems/payment-declined");
  CHECK(r.json()["status"] == 402);
  CHECK(order(1)["state"] == "payment_failed");
  CHECK(order(1)["charge_id"].is_null());
  auto again = checkout(checkout_body("tok_declined"), "declined-1");
  CHECK(again.status == 402);
  CHECK(again.body == r.body);
  CHECK(again.header("Idempotent-Replayed") == "true");
  CHECK(charges("declined-1") == 1);
  CHECK(request(http, "GET", "/jobs").json()["jobs"].empty());
  CHECK(sms().empty());
  CHECK(request(http, "GET", "/orders/2").status == 404);
}

TEST_CASE_FIXTURE(Fixture, "answers 503 on a gateway timeout and a retry charges once") {
  auto first = checkout(checkout_body("tok_timeout"), "slow-1");
  REQUIRE(first.status == 503);
  CHECK(first.json()["type"] == "/problems/payment-gateway-unavailable");
  CHECK_FALSE(first.header("Retry-After").empty());
  CHECK(order(1)["state"] == "pending");
  auto key = request(http, "GET", "/orders/1");  // the key stays at order_created, unlocked
  CHECK(key.status == 200);

  auto retry = checkout(checkout_body("tok_timeout"), "slow-1");
  REQUIRE(retry.status == 201);
  CHECK(retry.header("Idempotent-Replayed").empty());
  CHECK(retry.json()["id"] == 1);
  CHECK(request(http, "GET", "/orders/2").status == 404);
  CHECK(charges("slow-1") == 1);
  expect_shipped_once(1);
  CHECK(checkout(checkout_body("tok_timeout"), "slow-1").header("Idempotent-Replayed") == "true");
}

TEST_CASE_FIXTURE(Fixture, "answers 503 when the gateway fails and a retry resumes at the charge") {
  auto first = checkout(checkout_body("tok_flaky"), "flaky-1");
  REQUIRE(first.status == 503);
  CHECK(charges("flaky-1") == 0);
  auto retry = checkout(checkout_body("tok_flaky"), "flaky-1");
  REQUIRE(retry.status == 201);
  CHECK(retry.json()["id"] == 1);
  CHECK(request(http, "GET", "/orders/2").status == 404);
  CHECK(charges("flaky-1") == 1);
  expect_shipped_once(1);
}

TEST_CASE_FIXTURE(Fixture, "requires a key and validates the body, storing nothing") {
  auto no_key = request(http, "POST", "/checkout", checkout_body("tok_visa"));
  CHECK(no_key.status == 400);
  CHECK(no_key.json()["type"] == "/problems/idempotency-key-required");
  auto bad_key = checkout(checkout_body("tok_visa"), std::string(256, 'x'));
  CHECK(bad_key.status == 400);

  auto base = nlohmann::json::parse(checkout_body("tok_visa"));
  auto with = [&](const std::string& field, nlohmann::json value) {
    auto b = base;
    b[field] = std::move(value);
    return b.dump();
  };
  auto item = [](nlohmann::json quantity, nlohmann::json price) {
    return nlohmann::json::array({{{"sku", "x"},
                                   {"quantity", std::move(quantity)},
                                   {"unit_price_cents", std::move(price)}}});
  };
  nlohmann::json too_many = nlohmann::json::array();
  for (int i = 0; i < 101; ++i) too_many.push_back(item(1, 1)[0]);
  const std::vector<std::string> invalid = {
      with("email", "nope"),
      with("phone", "call me"),
      with("phone", "12"),
      with("items", nlohmann::json::array()),
      with("items", too_many),
      with("items", item(0, 100)),
      with("items", item(1001, 100)),
      with("items", item(1, -1)),
      with("items", item(1, 10'000'001)),
      with("items", item(1.5, 100)),
      with("payment_token", ""),
      with("payment_token", 42),
  };
  for (const auto& body : invalid) {
    CAPTURE(body.substr(0, 200));
    auto r = checkout(body, "validated");
    CHECK(r.status == 422);
    CHECK(r.header("Content-Type") == "application/problem+json");
  }
  CHECK(checkout("{oops", "validated").status == 400);
  CHECK(request(http, "POST", "/checkout", checkout_body("tok_visa"), "text/plain",
                {{"Idempotency-Key", "validated"}})
            .status == 415);
  CHECK(request(http, "GET", "/orders/1").status == 404);
  CHECK(all_charges() == 0);

  // Limits are inclusive, and the key is still free.
  auto edge = base;
  edge["items"] = item(1000, 10'000'000);
  auto ok = checkout(edge.dump(), "validated");
  CHECK(ok.status == 201);
  CHECK(ok.json()["total_cents"] == 10'000'000'000LL);
}

TEST_CASE_FIXTURE(Fixture, "answers 422 for a key reused with another checkout") {
  REQUIRE(checkout(checkout_body("tok_visa"), "same").status == 201);
  auto other = checkout(checkout_body("tok_declined"), "same");
  CHECK(other.status == 422);
  CHECK(other.json()["type"] == "/problems/idempotency-key-mismatch");
  CHECK(all_charges() == 1);
}

TEST_CASE_FIXTURE(Fixture, "answers 409 while a checkout with the key is in flight") {
  const std::string body = checkout_body("tok_visa");
  const app::KeyRef ref{"anonymous", "in-flight", "POST", "/checkout",
                        app::request_fingerprint("POST", "/checkout", body)};
  REQUIRE(server.app().db().write([&](db::Tx& tx) {
    (void)db::insert_started_key(tx, ref, clock.now_ms());
    return core::Status::ok();
  }));
  auto r = checkout(body, "in-flight");
  CHECK(r.status == 409);
  CHECK(r.json()["type"] == "/problems/idempotency-key-in-use");
  CHECK(r.header("Retry-After") == "1");
  CHECK(all_charges() == 0);
}

TEST_CASE_FIXTURE(Fixture, "runs 16 concurrent checkouts with one key as one order and charge") {
  constexpr int kClients = 16;
  const std::string body = checkout_body("tok_visa");
  std::vector<testing::HttpResult> results(kClients);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      // Connect before the barrier, so the burst is of requests, not of
      // connection attempts (a SYN dropped from the listen backlog costs 1 s+).
      httplib::Client c = server.client();
      c.set_keep_alive(true);
      while (request(c, "GET", "/healthz").status != 200) {
      }
      ready.fetch_add(1);
      while (ready.load() < kClients) std::this_thread::yield();
      results[i] = request(c, "POST", "/checkout", body, "application/json",
                           {{"Idempotency-Key", "stampede"}});
    });
  }
  for (auto& t : threads) t.join();
  int executed = 0;
  for (const auto& r : results) {
    CAPTURE(r.body);
    if (r.status == 409) {
      CHECK(r.json()["type"] == "/problems/idempotency-key-in-use");
      continue;
    }
    REQUIRE(r.status == 201);
    if (r.header("Idempotent-Replayed").empty()) ++executed;
  }
  CHECK(executed == 1);
  CHECK(request(http, "GET", "/orders/2").status == 404);
  CHECK(charges("stampede") == 1);
  expect_shipped_once(1);
}

TEST_CASE_FIXTURE(Fixture, "the completer finishes a checkout its client abandoned") {
  auto first = checkout(checkout_body("tok_flaky"), "abandoned");
  REQUIRE(first.status == 503);
  auto& completer = server.app().completer();

  auto early = completer.run_once();
  REQUIRE(early);
  CHECK(*early == 0);  // not idle for --completer-after yet
  CHECK(order(1)["state"] == "pending");

  clock.advance(config.completer_after_ms + 1);
  auto done = completer.run_once();
  REQUIRE(done);
  CHECK(*done == 1);
  CHECK(order(1)["state"] != "pending");
  CHECK(charges("abandoned") == 1);
  expect_shipped_once(1);

  auto again = completer.run_once();
  REQUIRE(again);
  CHECK(*again == 0);
  // The client's late retry gets what the completer stored.
  auto retry = checkout(checkout_body("tok_flaky"), "abandoned");
  CHECK(retry.status == 201);
  CHECK(retry.header("Idempotent-Replayed") == "true");
  CHECK(retry.json()["id"] == 1);
  CHECK(charges("abandoned") == 1);
}

TEST_CASE_FIXTURE(Fixture, "the completer leaves a key alone while its lock is fresh") {
  const std::string body = checkout_body("tok_visa");
  const app::KeyRef ref{"anonymous", "held", "POST", "/checkout",
                        app::request_fingerprint("POST", "/checkout", body)};
  // A key at order_created still locked by a (pretend) live request.
  REQUIRE(server.app().db().write([&](db::Tx& tx) {
    auto row = db::insert_started_key(tx, ref, clock.now_ms());
    services::CheckoutRequest req;
    REQUIRE_FALSE(services::validate_checkout(nlohmann::json::parse(body), &req));
    const auto order_id = server.app().context().checkout.create_order(tx, req);
    db::set_recovery_point(tx, row.id, db::kPointOrderCreated, order_id);
    return core::Status::ok();
  }));
  auto& completer = server.app().completer();
  clock.advance(config.completer_after_ms + 1);
  auto held = completer.run_once();
  REQUIRE(held);
  CHECK(*held == 0);
  clock.advance(config.idempotency_lock_timeout_ms);
  auto stale = completer.run_once();
  REQUIRE(stale);
  CHECK(*stale == 1);
  CHECK(order(1)["state"] != "pending");
  CHECK(charges("held") == 1);
}

TEST_CASE_FIXTURE(Fixture, "answers 404 for unknown orders") {
  CHECK(request(http, "GET", "/orders/1").status == 404);
  CHECK(request(http, "GET", "/orders/abc").status == 404);
  CHECK(request(http, "GET", "/orders/1").json()["type"] == "/problems/not-found");
}

TEST_CASE_FIXTURE(Fixture, "two clients using one key get two orders and two charges") {
  const std::string body = checkout_body("tok_visa");
  auto a = request(http, "POST", "/checkout", body, "application/json",
                   {{"Idempotency-Key", "common"}, {"Authorization", "Bearer client-a"}});
  auto b = request(http, "POST", "/checkout", body, "application/json",
                   {{"Idempotency-Key", "common"}, {"Authorization", "Bearer client-b"}});
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  CHECK(a.json()["id"] != b.json()["id"]);
  CHECK(a.json()["charge_id"] != b.json()["charge_id"]);
  CHECK(all_charges() == 2);
  auto a_again = request(http, "POST", "/checkout", body, "application/json",
                         {{"Idempotency-Key", "common"}, {"Authorization", "Bearer client-a"}});
  CHECK(a_again.header("Idempotent-Replayed") == "true");
  CHECK(a_again.body == a.body);
  CHECK(all_charges() == 2);
}

TEST_CASE("the order state machine: pending -> paid or payment_failed, paid -> ready_to_ship") {
  using services::OrderEvent;
  using services::OrderState;
  const auto pay = services::transition_for(OrderEvent::kPay);
  const auto fail = services::transition_for(OrderEvent::kFailPayment);
  const auto ship = services::transition_for(OrderEvent::kShip);
  REQUIRE(pay.has_value());
  REQUIRE(fail.has_value());
  REQUIRE(ship.has_value());
  CHECK(pay->from == OrderState::kPending);
  CHECK(pay->to == OrderState::kPaid);
  CHECK(fail->from == OrderState::kPending);
  CHECK(fail->to == OrderState::kPaymentFailed);
  CHECK(ship->from == OrderState::kPaid);
  CHECK(ship->to == OrderState::kReadyToShip);
  CHECK(std::size(services::kOrderTransitions) == 3);  // nothing leaves a final state
  for (auto s : {OrderState::kPending, OrderState::kPaid, OrderState::kPaymentFailed,
                 OrderState::kReadyToShip}) {
    CHECK(services::parse_order_state(services::to_string(s)) == s);
  }
  CHECK_FALSE(services::parse_order_state("shipped").has_value());
}

TEST_CASE_FIXTURE(Fixture, "shipping an order that is not paid is refused and writes nothing") {
  std::int64_t order_id = 0;
  REQUIRE(server.app()
              .db()
              .write([&](db::Tx& tx) {
                services::CheckoutRequest req;
                REQUIRE_FALSE(services::validate_checkout(
                    nlohmann::json::parse(checkout_body("tok_success")), &req));
                order_id = server.app().context().checkout.create_order(tx, req);
                return core::Status::ok();
              })
              .ok());
  const core::Status shipped =
      server.app().db().write([&](db::Tx& tx) { return services::ship_order(tx, order_id, 1); });
  CHECK(shipped.code() == core::Code::kConflict);
  CHECK(shipped.message() == "order " + std::to_string(order_id) + " is pending, not paid");
  const core::Status missing = server.app().db().write(
      [&](db::Tx& tx) { return services::ship_order(tx, order_id + 1000, 1); });
  CHECK(missing.code() == core::Code::kNotFound);
  auto order = request(http, "GET", "/orders/" + std::to_string(order_id)).json();
  CHECK(order["state"] == "pending");
}
