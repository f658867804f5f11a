// The fake payment gateway as an HTTP service (one charge per key, token
// behaviours, listing), the PaymentGateway client's timeout, and the real
// binary: the "fake gateway on" line, and a crash right after checkout's
// first phase followed by a restart whose completer charges exactly once.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <chrono>

#include "http/fake_gateway.h"
#include "services/payment_gateway.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

struct Fixture {
  testing::TempDir dir;
  core::SystemClock clock;
  tools::FakeGateway gateway{
      clock, tools::FakeGatewayOptions{"127.0.0.1", 0, 1500, dir.file("gateway.sqlite")}};
  int port = [this] {
    auto p = gateway.start();
    REQUIRE(p);
    return *p;
  }();
  httplib::Client http{"127.0.0.1", port};

  testing::HttpResult charge(const std::string& token, const std::string& key,
                             std::int64_t amount = 500) {
    return request(http, "POST", "/v1/charges",
                   nlohmann::json{{"amount_cents", amount}, {"token", token}}.dump(),
                   "application/json", {{"Idempotency-Key", key}});
  }
  int count(const std::string& key) {
    return request(http, "GET", "/v1/charges?idempotency_key=" + key).json()["count"].get<int>();
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "charges once per idempotency key and replays the answer") {
  auto first = charge("tok_visa", "k1");
  REQUIRE(first.status == 201);
  const std::string id = first.json()["id"];
  CHECK(id.rfind("ch_", 0) == 0);
  auto again = charge("tok_visa", "k1");
  CHECK(again.status == 201);
  CHECK(again.json()["id"] == id);
  CHECK(again.header("Idempotent-Replayed") == "true");
  CHECK(count("k1") == 1);
  CHECK(charge("tok_visa", "k2").json()["id"] != id);
  auto all = request(http, "GET", "/v1/charges").json();
  CHECK(all["count"] == 2);
  CHECK(all["charges"][0]["amount_cents"] == 500);
  CHECK(count("unknown") == 0);
}

TEST_CASE_FIXTURE(Fixture, "declines tok_declined with 402, also when replayed") {
  CHECK(charge("tok_declined", "d1").status == 402);
  CHECK(charge("tok_declined", "d1").status == 402);
  CHECK(count("d1") == 1);
}

TEST_CASE_FIXTURE(Fixture, "fails tok_flaky once per key, then succeeds") {
  CHECK(charge("tok_flaky", "f1").status == 500);
  CHECK(count("f1") == 0);
  CHECK(charge("tok_flaky", "f1").status == 201);
  CHECK(charge("tok_flaky", "f2").status == 500);
  CHECK(count("f1") == 1);
}

TEST_CASE_FIXTURE(Fixture, "refuses a charge without a key or with a bad body") {
  CHECK(
      request(http, "POST", "/v1/charges", R"({"amount_cents": 1, "token": "tok_visa"})").status ==
      400);
  CHECK(request(http, "POST", "/v1/charges", R"({"token": "tok_visa"})", "application/json",
                {{"Idempotency-Key", "x"}})
            .status == 400);
  CHECK(request(http, "GET", "/v1/charges").json()["count"] == 0);
}

TEST_CASE_FIXTURE(Fixture, "the client times out on tok_timeout and the retry gets the charge") {
  services::PaymentGateway client("http://127.0.0.1:" + std::to_string(port), 200);
  const auto started = std::chrono::steady_clock::now();
  auto first = client.charge(700, "tok_timeout", "t1");
  const auto waited = std::chrono::steady_clock::now() - started;
  CHECK(first.outcome == services::ChargeOutcome::kFailed);
  CHECK(waited < std::chrono::milliseconds(1400));
  auto retry = client.charge(700, "tok_timeout", "t1");
  CHECK(retry.outcome == services::ChargeOutcome::kSucceeded);
  CHECK(retry.charge_id.rfind("ch_", 0) == 0);
  CHECK(count("t1") == 1);
  CHECK(client.charge(700, "tok_declined", "t2").outcome == services::ChargeOutcome::kDeclined);
  services::PaymentGateway nowhere("", 200);
  CHECK(nowhere.charge(1, "tok_visa", "x").outcome == services::ChargeOutcome::kFailed);
}

TEST_CASE("the binary prints the fake gateway's URL on the line after listening on") {
  testing::TempDir dir;
  testing::ServerProcess server(testing::test_db(dir, "p.db"), {"--fake-gateway"});
  const std::string line = server.read_stdout_line();
  const std::string prefix = "fake gateway on http://127.0.0.1:";
  REQUIRE(line.rfind(prefix, 0) == 0);
  const int port = std::stoi(line.substr(prefix.size()));
  CHECK(port > 0);
  CHECK(port != server.port());
  httplib::Client gw("127.0.0.1", port);
  CHECK(request(gw, "GET", "/v1/charges").json()["count"] == 0);
  CHECK(server.terminate_and_wait() == 0);
}

TEST_CASE("a crash after order_created is finished by the completer with one charge") {
  testing::TempDir dir;
  const std::string db_path = testing::test_db(dir, "crash.db");
  const std::string body = nlohmann::json{
      {"email", "crash@example.com"},
      {"phone", "+15550100999"},
      {"items", {{{"sku", "a"}, {"quantity", 1}, {"unit_price_cents", 999}}}},
      {"payment_token",
       "tok_visa"}}.dump();
  {
    testing::ServerProcess doomed(db_path,
                                  {"--fake-gateway", "--test-crash-after", "order_created"});
    httplib::Client c = doomed.client();
    auto r = request(c, "POST", "/checkout", body, "application/json",
                     {{"Idempotency-Key", "crash-key"}});
    CHECK(r.status == 0);  // the process died before answering
  }
  // The dead process's key lock is taken over only once it is older than
  // --idempotency-lock-timeout (another process might still hold it).
  testing::ServerProcess server(db_path, {"--fake-gateway", "--completer-after", "200ms",
                                          "--idempotency-lock-timeout", "1s"});
  const std::string line = server.read_stdout_line();
  REQUIRE(line.rfind("fake gateway on http://", 0) == 0);
  httplib::Client gw(line.substr(std::string("fake gateway on ").size()));
  httplib::Client c = server.client();

  CHECK(testing::eventually([&] {
    auto o = request(c, "GET", "/orders/1");
    return o.status == 200 && o.json()["state"] == "ready_to_ship";
  }));
  auto charged = request(gw, "GET", "/v1/charges").json();
  CHECK(charged["count"] == 1);
  // Charged under the key record's own gateway key, not the client's string.
  CHECK(charged["charges"][0]["idempotency_key"] != "crash-key");
  CHECK(charged["charges"][0]["amount_cents"] == 999);
  CHECK(testing::eventually([&] {
    return request(c, "GET", "/mailbox?to=%2B15550100999").json()["messages"].size() == 1;
  }));
  auto retry =
      request(c, "POST", "/checkout", body, "application/json", {{"Idempotency-Key", "crash-key"}});
  CHECK(retry.status == 201);
  CHECK(retry.header("Idempotent-Replayed") == "true");
  CHECK(retry.json()["id"] == 1);
  CHECK(request(c, "GET", "/orders/2").status == 404);
  CHECK(request(gw, "GET", "/v1/charges").json()["count"] == 1);
}

TEST_CASE("refuses a duration flag that is not a duration, naming the flag" *
          doctest::test_suite("variant_independent")) {
  auto [code, out] = testing::run_binary({"serve", "--gateway-timeout", "soon"});
  CHECK(code == 2);
  CHECK(out.find("--gateway-timeout") != std::string::npos);
  auto [code2, out2] = testing::run_binary({"serve", "--payment-gateway-url", "ftp://x"});
  CHECK(code2 == 2);
  CHECK(out2.find("--payment-gateway-url") != std::string::npos);
}

namespace {

std::string checkout_body(const std::string& email, const std::string& token) {
  return nlohmann::json{{"email", email},
                        {"phone", "+15550100777"},
                        {"items", {{{"sku", "a"}, {"quantity", 1}, {"unit_price_cents", 1234}}}},
                        {"payment_token", token}}
      .dump();
}

}  // namespace

TEST_CASE("the fake gateway's charges live in its own file, never in the production database") {
  testing::TempDir dir;
  const std::string db_path = testing::test_db(dir, "prod.db");
  // On SQLite the store's default is a file beside the database; a URL has
  // no "beside", so on PostgreSQL it is named.
  std::vector<std::string> args = {"--fake-gateway"};
  std::string store_path = db_path + ".fake-gateway";
  if (testing::on_postgres()) {
    store_path = dir.file("gateway.sqlite");
    args.insert(args.end(), {"--fake-gateway-db", store_path});
  }
  {
    testing::ServerProcess server(db_path, args);
    httplib::Client c = server.client();
    auto paid = request(c, "POST", "/checkout", checkout_body("own@example.com", "tok_visa"),
                        "application/json", {{"Idempotency-Key", "own-file"}});
    REQUIRE(paid.status == 201);
    CHECK(server.terminate_and_wait() == 0);
  }
  const std::string gateway_tables =
      testing::on_postgres()
          ? "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'gateway%'"
          : "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'gateway%'";
  CHECK(testing::query_int(db_path, gateway_tables) == 0);
  CHECK(testing::query_int(db_path, "SELECT count(*) FROM orders WHERE charge_id IS NOT NULL") ==
        1);
  SQLite::Database store(store_path, SQLite::OPEN_READONLY);
  CHECK(store.execAndGet("SELECT count(*) FROM gateway_charges").getInt() == 1);
  // The order's charge is the store's, matched by the order's charge id.
  const std::string charge = store.execAndGet("SELECT charge_id FROM gateway_charges").getString();
  CHECK(testing::query_int(db_path,
                           "SELECT count(*) FROM orders WHERE charge_id = '" + charge + "'") == 1);
}

TEST_CASE("the standalone fake gateway serves two server nodes and survives kill -9") {
  testing::TempDir dir;
  const std::string store = dir.file("gateway.sqlite");
  std::string first_charge;
  {
    auto gateway = testing::ServerProcess::fake_gateway(store);
    const std::string url = gateway.url();
    testing::ServerProcess a(testing::test_db(dir, "a.db"), {"--payment-gateway-url", url});
    testing::ServerProcess b(testing::test_db(dir, "b.db"), {"--payment-gateway-url", url});
    httplib::Client ca = a.client();
    httplib::Client cb = b.client();
    REQUIRE(request(ca, "POST", "/checkout", checkout_body("a@example.com", "tok_visa"),
                    "application/json", {{"Idempotency-Key", "node-a"}})
                .status == 201);
    REQUIRE(request(cb, "POST", "/checkout", checkout_body("b@example.com", "tok_declined"),
                    "application/json", {{"Idempotency-Key", "node-b"}})
                .status == 402);
    httplib::Client gw("127.0.0.1", gateway.port());
    auto charges = request(gw, "GET", "/v1/charges").json();
    REQUIRE(charges["count"] == 2);
    first_charge = charges["charges"][0]["id"];
    gateway.kill9();
  }
  // A new gateway process on the same file answers every key as before.
  auto gateway = testing::ServerProcess::fake_gateway(store);
  httplib::Client gw("127.0.0.1", gateway.port());
  auto charges = request(gw, "GET", "/v1/charges").json();
  REQUIRE(charges["count"] == 2);
  const std::string key = charges["charges"][0]["idempotency_key"];
  auto replay = request(gw, "POST", "/v1/charges", R"({"amount_cents": 1234, "token": "tok_visa"})",
                        "application/json", {{"Idempotency-Key", key}});
  CHECK(replay.status == 201);
  CHECK(replay.header("Idempotent-Replayed") == "true");
  CHECK(replay.json()["id"] == first_charge);
  CHECK(request(gw, "GET", "/v1/charges").json()["count"] == 2);
  CHECK(gateway.terminate_and_wait() == 0);
}
