// The built-in dashboard: the page and its assets come from the binary and
// load nothing from elsewhere; the JSON reads it polls answer what the
// database holds.
#include <doctest/doctest.h>

#include <set>

#include "db/jobs.h"
#include "http/throughput.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::InProcessServer server{testing::test_config(dir)};
  httplib::Client http = server.client();

  // Stages `n` jobs of `kind` that no handler runs (scheduled a day ahead),
  // moved to `state` ("discarded", "cancelled" or "available"); their ids.
  std::vector<std::int64_t> stage(const std::string& kind, int n, const std::string& state) {
    std::vector<std::int64_t> ids;
    const core::Millis now = core::SystemClock().now_ms();
    REQUIRE(server.app().db().write([&](db::Tx& tx) {
      for (int i = 0; i < n; ++i) {
        db::NewJob job;
        job.kind = kind;
        job.run_at = now + 86400000;
        job.max_attempts = 1;
        auto id = db::stage_job(tx, job, now);
        REQUIRE(id);
        if (state == "discarded")
          REQUIRE(db::fail_unclaimed_job(tx, *id, 1, "boom", now, now, true));
        if (state == "cancelled") REQUIRE(db::cancel_job(tx, *id, now));
        ids.push_back(*id);
      }
      return core::Status::ok();
    }));
    return ids;
  }

  std::string state_of(std::int64_t id) {
    return request(http, "GET", "/jobs/" + std::to_string(id)).json()["state"];
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "serves the page, its CSS and JS from the binary with a strict CSP") {
  for (const auto& [path, type] : std::vector<std::pair<std::string, std::string>>{
           {"/", "text/html; charset=utf-8"},
           {"/dashboard.css", "text/css; charset=utf-8"},
           {"/dashboard.js", "text/javascript; charset=utf-8"}}) {
    CAPTURE(path);
    auto r = request(http, "GET", path);
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == type);
    CHECK(r.header("Content-Security-Policy").find("default-src 'self'") == 0);
    CHECK(r.header("Cache-Control") == "no-cache");
    CHECK(r.body.size() > 500);
    // Nothing is fetched from another origin.
    CHECK(r.body.find("http://") == std::string::npos);
    CHECK(r.body.find("https://") == std::string::npos);
    CHECK(r.body.find("src=\"//") == std::string::npos);
  }
  auto page = request(http, "GET", "/").body;
  CHECK(page.find("src=\"/dashboard.js\"") != std::string::npos);
  for (const char* view : {"overview", "jobs", "job", "domain", "stories"}) {
    CAPTURE(view);
    CHECK(page.find(std::string("data-view=\"") + view + "\"") != std::string::npos);
  }
}

TEST_CASE_FIXTURE(Fixture, "/api/stats counts users, audit rows, messages and jobs by state") {
  auto empty = request(http, "GET", "/api/stats").json();
  CHECK(empty["users"] == 0);
  CHECK(empty["jobs"]["available"] == 0);
  CHECK(empty["jobs"]["cancelled"] == 0);
  REQUIRE(request(http, "PUT", "/users/stats1%40example.com").status == 201);
  REQUIRE(request(http, "PUT", "/users/stats2%40example.com").status == 201);
  REQUIRE(request(http, "PUT", "/users/stats1%40example.com").status == 200);
  nlohmann::json stats;
  REQUIRE(testing::eventually([&] {
    stats = request(http, "GET", "/api/stats").json();
    return stats["messages"] == 2;
  }));
  CHECK(stats["users"] == 2);
  CHECK(stats["user_actions"] == 2);
  CHECK(stats["jobs"]["completed"] == 2);
  CHECK(stats["jobs_by_kind"][0]["kind"] == "send_welcome_email");
  CHECK(stats["transactions"]["commits"].get<int>() >= 2);
  CHECK(stats["version"] == AFTERCOMMIT_VERSION);
}

TEST_CASE_FIXTURE(Fixture, "/api/audit and /api/messages list the latest rows, newest first") {
  for (const char* email : {"a1%40example.com", "a2%40example.com", "a3%40example.com"})
    REQUIRE(request(http, "PUT", std::string("/users/") + email).status == 201);
  auto audit = request(http, "GET", "/api/audit?limit=2").json()["actions"];
  REQUIRE(audit.size() == 2);
  CHECK(audit[0]["email"] == "a3@example.com");
  CHECK(audit[1]["email"] == "a2@example.com");
  CHECK(audit[0]["action"] == "created");

  nlohmann::json messages;
  REQUIRE(testing::eventually([&] {
    messages = request(http, "GET", "/api/messages").json()["messages"];
    return messages.size() == 3;
  }));
  CHECK(messages[0]["id"].get<int>() > messages[2]["id"].get<int>());
  CHECK(messages[0]["subject"] == "Welcome");

  CHECK(request(http, "GET", "/api/audit?limit=0").status == 422);
  CHECK(request(http, "GET", "/api/messages?limit=abc").status == 422);
  CHECK(request(http, "GET", "/api/messages?limit=1001").status == 422);
}

TEST_CASE_FIXTURE(Fixture,
                  "GET /jobs pages by keyset: next_before walks every job once, newest first") {
  auto ids = stage("page_kind", 7, "available");
  std::vector<std::int64_t> seen;
  std::string path = "/jobs?kind=page_kind&limit=3";
  std::vector<std::size_t> sizes;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = request(http, "GET", path).json();
    sizes.push_back(page["jobs"].size());
    for (const auto& j : page["jobs"]) seen.push_back(j["id"].get<std::int64_t>());
    if (!page.contains("next_before")) break;
    CHECK(page["next_before"] == page["jobs"].back()["id"]);
    path = "/jobs?kind=page_kind&limit=3&before=" +
           std::to_string(page["next_before"].get<std::int64_t>());
  }
  CHECK(sizes == std::vector<std::size_t>{3, 3, 1});
  std::vector<std::int64_t> newest_first(ids.rbegin(), ids.rend());
  CHECK(seen == newest_first);
  // A filter and a cursor together: only older jobs of that state.
  stage("page_kind", 2, "cancelled");
  auto cancelled =
      request(http, "GET", "/jobs?state=cancelled&before=" + std::to_string(ids.back()));
  CHECK(cancelled.json()["jobs"].empty());
  CHECK(request(http, "GET", "/jobs?state=cancelled").json()["jobs"].size() == 2);
  CHECK(request(http, "GET", "/jobs?before=abc").status == 422);
  CHECK(request(http, "GET", "/jobs?before=0").status == 422);
}

TEST_CASE_FIXTURE(Fixture,
                  "POST /jobs/retry moves every discarded job of a kind back to available") {
  auto a = stage("bulk_a", 3, "discarded");
  auto b = stage("bulk_b", 2, "discarded");
  auto c = stage("bulk_a", 1, "cancelled");
  auto r = request(http, "POST", "/jobs/retry", R"({"state": "discarded", "kind": "bulk_a"})");
  REQUIRE(r.status == 200);
  CHECK(r.json()["retried"] == 3);
  for (auto id : a) CHECK(state_of(id) == "available");
  for (auto id : b) CHECK(state_of(id) == "discarded");  // another kind
  CHECK(state_of(c[0]) == "cancelled");                  // another state
  // One more attempt is allowed for a job that had used them all.
  CHECK(request(http, "GET", "/jobs/" + std::to_string(a[0])).json()["max_attempts"] == 2);
  auto all = request(http, "POST", "/jobs/retry", R"({"state": "discarded"})");
  CHECK(all.json()["retried"] == 2);
  CHECK(request(http, "POST", "/jobs/retry", R"({"state": "discarded"})").json()["retried"] == 0);
}

TEST_CASE_FIXTURE(Fixture, "POST /jobs/retry with ids is all or nothing") {
  auto discarded = stage("bulk_ids", 3, "discarded");
  auto other = stage("bulk_ids", 1, "available");
  const std::string mixed = R"({"state": "discarded", "ids": [)" + std::to_string(discarded[0]) +
                            "," + std::to_string(other[0]) + "," + std::to_string(discarded[1]) +
                            "]}";
  auto refused = request(http, "POST", "/jobs/retry", mixed);
  CHECK(refused.status == 409);
  CHECK(refused.json()["type"] == "/problems/invalid-transition");
  for (auto id : discarded) CHECK(state_of(id) == "discarded");  // nothing moved
  auto unknown = request(http, "POST", "/jobs/retry", R"({"state": "discarded", "ids": [987654]})");
  CHECK(unknown.status == 404);
  auto wrong_kind = request(
      http, "POST", "/jobs/retry",
      R"({"state": "discarded", "kind": "x", "ids": [)" + std::to_string(discarded[0]) + "]}");
  CHECK(wrong_kind.status == 409);
  CHECK(state_of(discarded[0]) == "discarded");

  const std::string two = R"({"state": "discarded", "ids": [)" + std::to_string(discarded[0]) +
                          "," + std::to_string(discarded[1]) + "," + std::to_string(discarded[0]) +
                          "]}";
  auto ok = request(http, "POST", "/jobs/retry", two);
  REQUIRE(ok.status == 200);
  CHECK(ok.json()["retried"] == 2);  // an id named twice is retried once
  CHECK(state_of(discarded[0]) == "available");
  CHECK(state_of(discarded[1]) == "available");
  CHECK(state_of(discarded[2]) == "discarded");

  for (const char* body :
       {R"({})", R"({"state": "completed"})", R"({"state": "discarded", "ids": []})",
        R"({"state": "discarded", "ids": ["1"]})", R"({"state": "discarded", "kind": 3})"}) {
    CAPTURE(body);
    CHECK(request(http, "POST", "/jobs/retry", body).status == 422);
  }
}

TEST_CASE_FIXTURE(Fixture,
                  "POST /jobs/retry with an Idempotency-Key runs once and replays its answer") {
  auto ids = stage("bulk_key", 2, "discarded");
  httplib::Headers key{{"Idempotency-Key", "bulk-retry-once"}};
  const std::string body = R"({"state": "discarded", "kind": "bulk_key"})";
  auto first = http.Post("/jobs/retry", key, body, "application/json");
  REQUIRE(first);
  CHECK(first->status == 200);
  CHECK(nlohmann::json::parse(first->body)["retried"] == 2);
  // Discard them again: a replay must not retry them a second time.
  REQUIRE(server.app().db().write([&](db::Tx& tx) {
    for (auto id : ids) {
      REQUIRE(db::cancel_job(tx, id, core::SystemClock().now_ms()));
    }
    return core::Status::ok();
  }));
  auto replay = http.Post("/jobs/retry", key, body, "application/json");
  REQUIRE(replay);
  CHECK(replay->status == 200);
  CHECK(replay->get_header_value("Idempotent-Replayed") == "true");
  CHECK(replay->body == first->body);
  for (auto id : ids) CHECK(state_of(id) == "cancelled");
  auto mismatch = http.Post("/jobs/retry", key, R"({"state": "cancelled"})", "application/json");
  REQUIRE(mismatch);
  CHECK(mismatch->status == 422);
}

TEST_CASE("the throughput ring counts per second, keeps 15 minutes and forgets older seconds") {
  app::ThroughputRing ring;
  const core::Millis t0 = 1'700'000'000'000;
  for (int i = 0; i < 98; ++i) ring.record_request(t0, 1000);  // 1 ms
  ring.record_request(t0 + 10, 200000);                        // 200 ms
  ring.record_request(t0 + 20, 200000);
  ring.record_job(t0, true);
  ring.record_job(t0 + 999, true);
  ring.record_job(t0 + 1000, false);  // the next second

  auto snap = ring.snapshot(t0 + 1500, 3);
  CHECK(snap["start"] == t0 / 1000 - 1);
  CHECK(snap["completed"] == nlohmann::json({0, 2, 0}));
  CHECK(snap["failed"] == nlohmann::json({0, 0, 1}));
  CHECK(snap["requests"] == nlohmann::json({0, 100, 0}));
  CHECK(snap["p50_ms"][0].is_null());
  // Bucket upper bounds: at most 25 % above the true value.
  const double p50 = snap["p50_ms"][1];
  const double p99 = snap["p99_ms"][1];
  CHECK(p50 >= 1.0);
  CHECK(p50 <= 1.25);
  CHECK(p99 >= 200.0);
  CHECK(p99 <= 250.0);
  CHECK(snap["totals"]["requests"] == 100);
  CHECK(snap["totals"]["completed"] == 2);

  // 15 minutes later the slot is reused for a new second; the old counts are gone.
  const core::Millis later = t0 + app::ThroughputRing::kSeconds * 1000;
  ring.record_request(later, 5000);
  auto full = ring.snapshot(later);
  CHECK(full["requests"].size() == app::ThroughputRing::kSeconds);
  CHECK(full["totals"]["requests"] == 1);
  CHECK(full["totals"]["completed"] == 0);
}

TEST_CASE_FIXTURE(Fixture, "/api/throughput shows the requests and jobs of the last seconds") {
  auto before = request(http, "GET", "/api/throughput?seconds=900").json()["totals"];
  REQUIRE(request(http, "PUT", "/users/tp1%40example.com").status == 201);
  REQUIRE(request(http, "PUT", "/users/tp2%40example.com").status == 201);
  REQUIRE(testing::eventually(
      [&] { return request(http, "GET", "/api/stats").json()["jobs"]["completed"] == 2; }));
  auto after = request(http, "GET", "/api/throughput").json();
  CHECK(after["requests"].size() == 900);
  // Process-wide: other servers of this process may add to it, never less.
  CHECK(after["totals"]["requests"].get<int>() >= before["requests"].get<int>() + 3);
  CHECK(after["totals"]["completed"].get<int>() >= before["completed"].get<int>() + 2);
  CHECK(after["totals"]["p99_ms"].is_number());
  CHECK(request(http, "GET", "/api/throughput?seconds=5").json()["completed"].size() == 5);
  CHECK(request(http, "GET", "/api/throughput?seconds=0").status == 422);
  CHECK(request(http, "GET", "/api/throughput?seconds=901").status == 422);
}
