// The idempotency layer over real HTTP (in-process server, temporary
// database): replay byte for byte, fingerprint mismatch, in-flight 409 and
// stale-lock takeover, key syntax, client scopes, validation storing nothing,
// concurrent requests with one key, and the key reaper with a ManualClock.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "cli/cli.h"
#include "db/idempotency.h"
#include "db/users.h"
#include "http/idempotency.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

constexpr core::Millis kStart = 1'800'000'000'000;

struct Fixture {
  testing::TempDir dir;
  core::ManualClock clock{kStart};
  app::Config config = [this] {
    app::Config c = testing::test_config(dir);
    c.idempotency_lock_timeout_ms = 90'000;
    c.idempotency_ttl_ms = 24LL * 3600 * 1000;
    return c;
  }();
  testing::InProcessServer server{config, &clock};
  httplib::Client http = server.client();

  testing::HttpResult put_user(const std::string& email, const std::string& key,
                               const httplib::Headers& extra = {}) {
    httplib::Headers h = extra;
    h.emplace("Idempotency-Key", key);
    return request(http, "PUT", "/users/" + email, "", "application/json", h);
  }
  testing::HttpResult post_user(const std::string& body, const std::string& key,
                                const httplib::Headers& extra = {}) {
    httplib::Headers h = extra;
    h.emplace("Idempotency-Key", key);
    return request(http, "POST", "/api/users", body, "application/json", h);
  }
  std::int64_t count_users() {
    std::int64_t n = 0;
    REQUIRE(server.app().db().read([&](db::Conn& c) {
      n = db::count_users(c);
      return core::Status::ok();
    }));
    return n;
  }
  std::optional<db::IdempotencyKeyRow> key_row(const std::string& key,
                                               const std::string& scope = "anonymous") {
    std::optional<db::IdempotencyKeyRow> row;
    REQUIRE(server.app().db().read([&](db::Conn& c) {
      row = db::find_idempotency_key(c, scope, key);
      return core::Status::ok();
    }));
    return row;
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "replays the stored response for a finished key byte for byte") {
  auto first = post_user(R"({"email": "ann@example.com"})", "key-1");
  REQUIRE(first.status == 201);
  CHECK(first.header("Idempotent-Replayed").empty());
  auto again = post_user(R"({"email": "ann@example.com"})", "key-1");
  CHECK(again.status == 201);
  CHECK(again.body == first.body);
  CHECK(again.header("Location") == first.header("Location"));
  CHECK(again.header("Content-Type") == first.header("Content-Type"));
  CHECK(again.header("Idempotent-Replayed") == "true");
  // Without the key the same request is a plain create-or-get: 200.
  CHECK(request(http, "POST", "/api/users", R"({"email": "ann@example.com"})").status == 200);

  auto row = key_row("key-1");
  REQUIRE(row);
  CHECK(row->recovery_point == "finished");
  CHECK_FALSE(row->locked_at);
  CHECK(row->response->status == 201);
  CHECK(count_users() == 1);
  const auto id = first.json()["id"].get<std::int64_t>();
  CHECK(
      request(http, "GET", "/users/" + std::to_string(id) + "/actions").json()["actions"].size() ==
      1);
  CHECK(request(http, "GET", "/jobs?kind=send_welcome_email").json()["jobs"].size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "replays a 200 for an existing user under a new key and stores it") {
  REQUIRE(request(http, "PUT", "/users/bob@example.com").status == 201);
  auto keyed = put_user("bob@example.com", "k-existing");
  CHECK(keyed.status == 200);
  CHECK(key_row("k-existing"));
  auto again = put_user("bob@example.com", "k-existing");
  CHECK(again.status == 200);
  CHECK(again.body == keyed.body);
  CHECK(again.header("Idempotent-Replayed") == "true");
}

TEST_CASE_FIXTURE(Fixture, "answers 422 when a key is reused with another request") {
  REQUIRE(post_user(R"({"email": "a@example.com"})", "reused").status == 201);
  auto other_body = post_user(R"({"email": "b@example.com"})", "reused");
  CHECK(other_body.status == 422);
  CHECK(other_body.header("Content-Type") == "application/problem+json");
  CHECK(other_body.json()["type"] == "/problems/idempotency-key-mismatch");
  CHECK(other_body.json()["status"] == 422);
  auto other_path = put_user("a@example.com", "reused");
  CHECK(other_path.status == 422);
  auto other_query = request(http, "PUT", "/users?email=a%40example.com", "", "application/json",
                             {{"Idempotency-Key", "reused"}});
  CHECK(other_query.status == 422);
  CHECK(count_users() == 1);
}

TEST_CASE_FIXTURE(Fixture, "rejects keys that are empty, too long or not visible ASCII with 400") {
  for (const std::string& key : {std::string(256, 'k'), std::string("has space"),
                                 std::string("tab\there"), std::string("caf\xc3\xa9")}) {
    CAPTURE(key);
    auto r = put_user("x@example.com", key);
    CHECK(r.status == 400);
    CHECK(r.json()["type"] == "/problems/invalid-idempotency-key");
  }
  CHECK(count_users() == 0);
  CHECK(put_user("x@example.com", std::string(255, 'k')).status == 201);
  CHECK(put_user("y@example.com", "!~\"#$%&'()*+,-./:;<=>?@[]^_`{|}").status == 201);
}

TEST_CASE_FIXTURE(Fixture, "stores nothing under the key for a request rejected by validation") {
  auto bad = post_user(R"({"email": "not-an-email"})", "v-key");
  CHECK(bad.status == 422);
  CHECK(bad.json()["type"] == "/problems/invalid-email");
  auto malformed = post_user("{nope", "v-key");
  CHECK(malformed.status == 400);
  CHECK_FALSE(key_row("v-key"));
  // The key is still free for a corrected request.
  auto good = post_user(R"({"email": "fixed@example.com"})", "v-key");
  CHECK(good.status == 201);
  CHECK(good.header("Idempotent-Replayed").empty());
}

TEST_CASE_FIXTURE(Fixture, "scopes keys per bearer token, and anonymous clients share one scope") {
  auto alice = put_user("alice@example.com", "shared", {{"Authorization", "Bearer token-a"}});
  auto bob = put_user("bob@example.com", "shared", {{"Authorization", "Bearer token-b"}});
  auto anon = put_user("carol@example.com", "shared");
  CHECK(alice.status == 201);
  CHECK(bob.status == 201);
  CHECK(anon.status == 201);
  CHECK(put_user("dave@example.com", "shared").status == 422);
  auto alice_again = put_user("alice@example.com", "shared", {{"Authorization", "Bearer token-a"}});
  CHECK(alice_again.header("Idempotent-Replayed") == "true");
  CHECK(alice_again.body == alice.body);
  CHECK(count_users() == 3);
}

TEST_CASE_FIXTURE(Fixture, "answers 409 in-use while a key is locked and takes over a stale lock") {
  const app::KeyRef ref{"anonymous", "locked-key", "PUT", "/users/lock@example.com",
                        app::request_fingerprint("PUT", "/users/lock@example.com", "")};
  REQUIRE(server.app().db().write([&](db::Tx& tx) {
    (void)db::insert_started_key(tx, ref, clock.now_ms());
    return core::Status::ok();
  }));
  auto busy = put_user("lock@example.com", "locked-key");
  CHECK(busy.status == 409);
  CHECK(busy.json()["type"] == "/problems/idempotency-key-in-use");
  CHECK_FALSE(busy.header("Retry-After").empty());
  CHECK(count_users() == 0);

  clock.advance(config.idempotency_lock_timeout_ms + 1);
  auto taken_over = put_user("lock@example.com", "locked-key");
  CHECK(taken_over.status == 201);
  auto row = key_row("locked-key");
  REQUIRE(row);
  CHECK(row->recovery_point == "finished");
  CHECK_FALSE(row->locked_at);
  CHECK(put_user("lock@example.com", "locked-key").header("Idempotent-Replayed") == "true");
}

TEST_CASE_FIXTURE(Fixture, "executes 16 concurrent requests with one key exactly once") {
  constexpr int kClients = 16;
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
      results[i] = request(c, "POST", "/api/users", R"({"email": "race@example.com"})",
                           "application/json", {{"Idempotency-Key", "one-key"}});
    });
  }
  for (auto& t : threads) t.join();
  int executed = 0;
  std::string body;
  for (const auto& r : results) {
    CAPTURE(r.body);
    if (r.status == 409) {
      CHECK(r.json()["type"] == "/problems/idempotency-key-in-use");
      continue;
    }
    REQUIRE(r.status == 201);
    if (body.empty()) body = r.body;
    CHECK(r.body == body);
    if (r.header("Idempotent-Replayed").empty()) ++executed;
  }
  CHECK(executed == 1);
  CHECK(count_users() == 1);
  CHECK(request(http, "GET", "/jobs?kind=send_welcome_email").json()["jobs"].size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "reaps keys older than the ttl and keeps the business rows") {
  REQUIRE(put_user("old@example.com", "old-key").status == 201);
  clock.advance(config.idempotency_ttl_ms / 2);
  REQUIRE(put_user("young@example.com", "young-key").status == 201);
  auto& reaper = server.app().key_reaper();

  auto none = reaper.run_once();
  REQUIRE(none);
  CHECK(*none == 0);

  clock.advance(config.idempotency_ttl_ms / 2 + 1);
  auto reaped = reaper.run_once();
  REQUIRE(reaped);
  CHECK(*reaped == 1);
  CHECK_FALSE(key_row("old-key"));
  CHECK(key_row("young-key"));
  CHECK(count_users() == 2);
  // The reaped key is free again: the same request is a new one (the user
  // exists, so 200), and it is not replayed.
  auto after = put_user("old@example.com", "old-key");
  CHECK(after.status == 200);
  CHECK(after.header("Idempotent-Replayed").empty());
}

TEST_CASE("parses durations for the idempotency and gateway flags") {
  CHECK(app::parse_duration_ms("250") == 250);
  CHECK(app::parse_duration_ms("250ms") == 250);
  CHECK(app::parse_duration_ms("2s") == 2000);
  CHECK(app::parse_duration_ms("5m") == 300000);
  CHECK(app::parse_duration_ms("24h") == 86400000);
  CHECK_FALSE(app::parse_duration_ms("two"));
  CHECK_FALSE(app::parse_duration_ms("5x"));
  CHECK_FALSE(app::parse_duration_ms("-1s"));
}

// SQLite only: it needs a database-wide write lock another process holds;
// PostgreSQL has none (its row-lock timeout is pg_driver_test's).
TEST_CASE("SQLite: stores nothing when the write lock cannot be had, so the retry runs afresh" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  app::Config config = testing::test_config(dir);
  config.busy_timeout_ms = 20;
  config.max_attempts = 1;
  config.fake_gateway = true;
  testing::InProcessServer server(config);
  httplib::Client http = server.client();

  // A second Database on the file stands for another process holding the
  // write lock (BEGIN IMMEDIATE) until released.
  db::Options other_options;
  other_options.sqlite.path = config.db_path;
  auto other = db::Database::open(other_options);
  REQUIRE(other);
  std::promise<void> locked;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::thread holder([&] {
    (void)(*other)->write([&](db::Tx&) {
      locked.set_value();
      released.wait();
      return core::Status::ok();
    });
  });
  locked.get_future().wait();

  const std::string checkout =
      R"({"email": "x@example.com", "phone": "+15550100200", "payment_token": "tok_visa",
          "items": [{"sku": "a", "quantity": 1, "unit_price_cents": 100}]})";
  auto busy_user = request(http, "PUT", "/users/busy@example.com", "", "application/json",
                           {{"Idempotency-Key", "busy-user"}});
  CHECK(busy_user.status == 409);
  CHECK(busy_user.json()["type"] == "/problems/busy");
  CHECK(busy_user.header("Retry-After") == "1");
  auto busy_checkout = request(http, "POST", "/checkout", checkout, "application/json",
                               {{"Idempotency-Key", "busy-checkout"}});
  CHECK(busy_checkout.status == 409);
  CHECK(busy_checkout.json()["type"] == "/problems/busy");

  release.set_value();
  holder.join();
  auto user = request(http, "PUT", "/users/busy@example.com", "", "application/json",
                      {{"Idempotency-Key", "busy-user"}});
  CHECK(user.status == 201);
  CHECK(user.header("Idempotent-Replayed").empty());
  auto order = request(http, "POST", "/checkout", checkout, "application/json",
                       {{"Idempotency-Key", "busy-checkout"}});
  CHECK(order.status == 201);
  CHECK(order.header("Idempotent-Replayed").empty());
  CHECK(order.json()["id"] == 1);
}
