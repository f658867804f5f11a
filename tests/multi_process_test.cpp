// Several processes serving one database file (a supported way to run; see
// docs/RELIABILITY.md "Across processes"). A process that starts while
// another one serves the file must not take over that process's live work:
// jobs are rescued only when their lease expired, key locks released only
// when older than --idempotency-lock-timeout. A process that dies, though,
// has its work taken over by a survivor once its leases end.
//
// Each case runs the real binary twice on one file. The sequence of the
// issue: A serves, B starts, A stops, B takes work that stays in flight for
// seconds, A starts again while it is in flight.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"
#include "tests/support/webhook_sink.h"

using testing::request;

namespace {

constexpr char kSecret[] = "whsec_multi_process";

std::vector<std::string> webhook_args(const testing::WebhookSink& sink, const std::string& lease) {
  return {"--webhook-url", sink.url(), "--webhook-secret",  kSecret,
          "--job-lease",   lease,      "--webhook-timeout", "20000"};
}

nlohmann::json webhook_jobs(httplib::Client& http) {
  return request(http, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
}

std::string checkout_body() {
  return nlohmann::json{{"email", "multi@example.com"},
                        {"phone", "+15550100300"},
                        {"items", {{{"sku", "mug"}, {"quantity", 1}, {"unit_price_cents", 1250}}}},
                        {"payment_token", "tok_timeout"}}
      .dump();
}

}  // namespace

TEST_CASE("a server started while another delivers a webhook leaves the delivery to it") {
  testing::WebhookSink sink;
  sink.hold();
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "shared.db");
  // A 3 s lease: only B's heartbeats keep the delivery's lease alive while
  // the receiver holds it for longer than that.
  const auto args = webhook_args(sink, "3000");
  auto a = std::make_unique<testing::ServerProcess>(db, args);
  testing::ServerProcess b(db, args);
  REQUIRE(a->terminate_and_wait() == 0);
  a.reset();

  auto http_b = b.client();
  REQUIRE(request(http_b, "PUT", "/users/live@example.com").status == 201);
  REQUIRE(sink.wait_for(1));  // B's POST is in flight, held by the receiver

  testing::ServerProcess a2(db, args);  // start-up recovery runs while B delivers
  // Keep the delivery in flight for longer than a lease plus a rescuer pass
  // of A2 (a third of a lease): only a lease A2 wrongly treated as expired,
  // or a start-up rescue of every running job, could take it from B now.
  std::this_thread::sleep_for(std::chrono::milliseconds(5000));
  CHECK(sink.keys().size() == 1);
  sink.release();

  auto http_a = a2.client();
  nlohmann::json job;
  REQUIRE(testing::eventually([&] {
    auto jobs = webhook_jobs(http_a);
    if (jobs.size() != 1 || jobs[0]["state"] != "completed") return false;
    job = jobs[0];
    return true;
  }));
  CHECK(job["attempt"] == 1);
  CHECK(job["errors"].empty());
  CHECK(sink.keys().size() == 1);  // sent exactly once
  CHECK(a2.terminate_and_wait() == 0);
  CHECK(b.terminate_and_wait() == 0);
}

TEST_CASE(
    "a checkout in flight on one server answers 409 to its key on a server started "
    "meanwhile") {
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "shared.db");
  // One gateway store for every process (on SQLite the default beside the
  // file; a URL has no "beside"), as one real gateway would be: the charge
  // B's gateway makes after B gave up is the one A2's retry finds.
  const std::string store = dir.file("gateway.sqlite");
  const std::vector<std::string> args = {"--fake-gateway", "--fake-gateway-db", store};
  // B's gateway answers tok_timeout after B gave up (--gateway-timeout):
  // the checkout stays in flight, its key locked by B, for 6 s.
  const std::vector<std::string> b_args = {"--fake-gateway", "--fake-gateway-db", store,
                                           "--gateway-timeout", "6000"};
  auto a = std::make_unique<testing::ServerProcess>(db, args);
  testing::ServerProcess b(db, b_args);
  REQUIRE(a->terminate_and_wait() == 0);
  a.reset();

  const std::string body = checkout_body();
  const httplib::Headers key = {{"Idempotency-Key", "multi-K"}};
  std::atomic<bool> b_answered{false};
  auto on_b = std::async(std::launch::async, [&] {
    auto http = b.client();
    http.set_read_timeout(30, 0);
    auto r = request(http, "POST", "/checkout", body, "application/json", key);
    b_answered = true;
    return r;
  });
  auto http_b = b.client();
  REQUIRE(testing::eventually([&] { return request(http_b, "GET", "/orders/1").status == 200; }));

  testing::ServerProcess a2(db, args);
  auto http_a = a2.client();
  auto in_use = request(http_a, "POST", "/checkout", body, "application/json", key);
  REQUIRE_FALSE(b_answered.load());  // the answer below was given while B still ran it
  CHECK(in_use.status == 409);
  CHECK(in_use.json()["type"] == "/problems/idempotency-key-in-use");

  auto first = on_b.get();
  CHECK(first.status == 503);  // B's gateway call timed out; the key is unlocked
  // The client's retry, now on A2, resumes the same order: one order, paid.
  auto retry = request(http_a, "POST", "/checkout", body, "application/json", key);
  CHECK(retry.status == 201);
  CHECK(retry.json()["id"] == 1);
  CHECK(request(http_a, "GET", "/orders/2").status == 404);
  CHECK(a2.terminate_and_wait() == 0);
}

TEST_CASE("a delivery of a server killed by kill -9 is taken over by a live one after its lease") {
  testing::WebhookSink sink;
  sink.hold();
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "shared.db");
  const auto args = webhook_args(sink, "1000");
  auto b = std::make_unique<testing::ServerProcess>(db, args);
  auto http_b = b->client();
  REQUIRE(request(http_b, "PUT", "/users/killed@example.com").status == 201);
  REQUIRE(sink.wait_for(1));  // B's POST is in flight

  testing::ServerProcess a(db, args);
  b->kill9();
  b.reset();
  // Nobody restarts B: A's rescuer sees the lease expire and A delivers again.
  REQUIRE(sink.wait_for(2));
  sink.release();
  auto http_a = a.client();
  nlohmann::json job;
  REQUIRE(testing::eventually([&] {
    auto jobs = webhook_jobs(http_a);
    if (jobs.size() != 1 || jobs[0]["state"] != "completed") return false;
    job = jobs[0];
    return true;
  }));
  CHECK(job["attempt"] == 2);
  REQUIRE(job["errors"].size() == 1);
  CHECK(job["errors"][0]["message"].get<std::string>().find("lease expired") != std::string::npos);
  auto keys = sink.keys();
  REQUIRE(keys.size() == 2);  // at-least-once: the cut attempt and the one that completed
  CHECK(keys[0] == keys[1]);
  CHECK(a.terminate_and_wait() == 0);
}
