// GET /metrics and the registry behind it: the text format (checked by
// Prometheus's own parser, promtool), request counts by route template and
// status, transaction counters, job gauges and the job histograms.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "http/idempotency.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

// "name{labels}" -> value, for every sample line of a scrape.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

double value(const std::map<std::string, double>& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? 0 : it->second;
}

// Runs promtool (Debian's prometheus package; `make deps` installs it) on
// the text; returns its exit code and output.
std::pair<int, std::string> promtool_check(const testing::TempDir& dir, const std::string& text) {
  const std::string in = dir.file("scrape.txt");
  const std::string out = dir.file("promtool.out");
  std::ofstream(in) << text;
  const int rc = std::system(("promtool check metrics < " + testing::shell_quote(in) + " > " +
                              testing::shell_quote(out) + " 2>&1")
                                 .c_str());
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ss.str()};
}

struct Fixture {
  testing::TempDir dir;
  testing::InProcessServer server{testing::test_config(dir)};
  httplib::Client http = server.client();

  std::map<std::string, double> scrape() {
    auto r = request(http, "GET", "/metrics");
    REQUIRE(r.status == 200);
    return samples(r.body);
  }
};

}  // namespace

TEST_CASE("renders counters, gauges and cumulative histogram buckets in text format 0.0.4") {
  core::metrics::Registry reg;
  reg.counter_family("t_requests_total", "Requests.", {"route"}).with({"/a\"b\\c\nd"}).inc(3);
  reg.gauge("t_temperature", "Degrees.").set(21.5);
  auto& h = reg.histogram_family("t_seconds", "Latency.", {}, {0.1, 1}).with({});
  h.observe(0.05);
  h.observe(0.1);  // a bound is "less than or equal"
  h.observe(0.5);
  h.observe(7);
  const std::string text = reg.render({{"t_rows", "Rows.", "gauge", {{"table", "users"}}, 4}});
  CHECK(text.find("# TYPE t_requests_total counter\n") != std::string::npos);
  CHECK(text.find("t_requests_total{route=\"/a\\\"b\\\\c\\nd\"} 3\n") != std::string::npos);
  CHECK(text.find("t_temperature 21.5\n") != std::string::npos);
  CHECK(text.find("t_seconds_bucket{le=\"0.1\"} 2\n") != std::string::npos);
  CHECK(text.find("t_seconds_bucket{le=\"1\"} 3\n") != std::string::npos);
  CHECK(text.find("t_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(text.find("t_seconds_count 4\n") != std::string::npos);
  CHECK(text.find("t_seconds_sum 7.65") != std::string::npos);
  CHECK(text.find("# TYPE t_rows gauge\nt_rows{table=\"users\"} 4\n") != std::string::npos);

  testing::TempDir dir;
  auto [rc, out] = promtool_check(dir, text);
  CAPTURE(out);
  CHECK(rc == 0);
}

TEST_CASE("returns the same instrument for the same name and labels") {
  core::metrics::Registry reg;
  auto& a = reg.counter_family("t_total", "x", {"k"}).with({"v"});
  auto& b = reg.counter_family("t_total", "ignored", {"k"}).with({"v"});
  CHECK(&a == &b);
  a.inc();
  CHECK(b.value() == 1);
}

TEST_CASE_FIXTURE(Fixture, "serves a scrape that promtool accepts, with every documented series") {
  REQUIRE(request(http, "PUT", "/users/metrics%40example.com").status == 201);
  REQUIRE(testing::eventually([&] {
    return request(http, "GET", "/mailbox?to=metrics%40example.com").json()["messages"].size() == 1;
  }));
  request(http, "GET", "/no/such/route");
  // The runner reports the attempt just after its completion committed.
  testing::HttpResult r;
  REQUIRE(testing::eventually([&] {
    r = request(http, "GET", "/metrics");
    return r.body.find(R"(aftercommit_job_attempts_total{kind="send_welcome_email")") !=
           std::string::npos;
  }));
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  auto [rc, out] = promtool_check(dir, r.body);
  CAPTURE(out);
  CHECK(rc == 0);
  for (const char* series :
       {"aftercommit_http_requests_total", "aftercommit_http_request_duration_seconds_bucket",
        "aftercommit_db_tx_attempts_total", "aftercommit_db_busy_retries_total",
        "aftercommit_idempotent_replays_total", "aftercommit_jobs{",
        "aftercommit_job_commit_to_start_seconds_bucket", "aftercommit_job_duration_seconds_bucket",
        "aftercommit_webhook_deliveries_total", "aftercommit_idempotency_conflicts_total",
        "aftercommit_db_group_commit_batches_total", "aftercommit_db_group_commit_phases_total",
        "aftercommit_db_group_commit_phase_reruns_total", "aftercommit_build_info"}) {
    CAPTURE(series);
    CHECK(r.body.find(series) != std::string::npos);
  }
}

TEST_CASE_FIXTURE(Fixture, "counts requests by route template and status, never by raw path") {
  const std::string created =
      R"(aftercommit_http_requests_total{method="PUT",route="/users/{user}",status="201"})";
  const std::string existing =
      R"(aftercommit_http_requests_total{method="PUT",route="/users/{user}",status="200"})";
  const std::string unmatched =
      R"(aftercommit_http_requests_total{method="GET",route="unmatched",status="404"})";
  const auto before = scrape();
  REQUIRE(request(http, "PUT", "/users/route-a%40example.com").status == 201);
  REQUIRE(request(http, "PUT", "/users/route-b%40example.com").status == 201);
  REQUIRE(request(http, "PUT", "/users/route-a%40example.com").status == 200);
  REQUIRE(request(http, "GET", "/definitely/not/here").status == 404);
  const std::string latency =
      R"(aftercommit_http_request_duration_seconds_count{method="PUT",route="/users/{user}"})";
  // The logger hook counts after the response is written, on whichever
  // server thread served it (the client may have reconnected in between), so
  // the last request's count can land before an earlier one's: wait for all.
  std::map<std::string, double> after;
  REQUIRE(testing::eventually([&] {
    after = scrape();
    return value(after, unmatched) - value(before, unmatched) >= 1 &&
           value(after, created) - value(before, created) >= 2 &&
           value(after, existing) - value(before, existing) >= 1 &&
           value(after, latency) - value(before, latency) >= 3;
  }));
  CHECK(value(after, created) - value(before, created) == 2);
  CHECK(value(after, existing) - value(before, existing) == 1);
  for (const auto& [key, v] : after) {
    CAPTURE(key);
    CHECK(key.find("route-a") == std::string::npos);
  }
  CHECK(value(after, latency) - value(before, latency) == 3);
}

TEST_CASE_FIXTURE(Fixture, "exposes transaction attempts and job counts by kind and state") {
  const auto before = scrape();
  REQUIRE(request(http, "POST", "/api/users", R"({"email": "jobs@example.com"})").status == 201);
  const std::string started =
      R"(aftercommit_job_commit_to_start_seconds_count{kind="send_welcome_email"})";
  const std::string ran =
      R"(aftercommit_job_duration_seconds_count{kind="send_welcome_email",outcome="ok"})";
  const std::string attempts =
      R"(aftercommit_job_attempts_total{kind="send_welcome_email",outcome="ok"})";
  // The runner reports an attempt after its completion committed: wait for both.
  std::map<std::string, double> after;
  REQUIRE(testing::eventually([&] {
    after = scrape();
    return value(after, R"(aftercommit_jobs{kind="send_welcome_email",state="completed"})") == 1 &&
           value(after, attempts) - value(before, attempts) == 1;
  }));
  // A scrape reads the transaction counters before it counts jobs in the
  // database, so the one that saw the completion may hold counters from
  // before the job's transaction began: the next one cannot.
  after = scrape();
  CHECK(value(after, R"(aftercommit_jobs{kind="send_welcome_email",state="available"})") == 0);
  CHECK(value(after, R"(aftercommit_jobs{kind="send_welcome_email",state="discarded"})") == 0);
  // The create, then the transaction that runs and completes its job.
  CHECK(value(after, "aftercommit_db_tx_attempts_total") -
            value(before, "aftercommit_db_tx_attempts_total") >=
        2);
  CHECK(value(after, "aftercommit_db_commits_total") >
        value(before, "aftercommit_db_commits_total"));
  CHECK(value(after, started) - value(before, started) == 1);
  CHECK(value(after, ran) - value(before, ran) == 1);
  CHECK(value(after, attempts) - value(before, attempts) == 1);
}

TEST_CASE_FIXTURE(Fixture, "counts increments of the instruments other layers share") {
  const auto before = scrape();
  core::metrics::idempotent_replays().inc();
  core::metrics::webhook_deliveries("delivered").inc(2);
  const auto after = scrape();
  CHECK(value(after, "aftercommit_idempotent_replays_total") -
            value(before, "aftercommit_idempotent_replays_total") ==
        1);
  const std::string delivered = R"(aftercommit_webhook_deliveries_total{outcome="delivered"})";
  CHECK(value(after, delivered) - value(before, delivered) == 2);
}

TEST_CASE_FIXTURE(Fixture, "counts each replay once, on the fast path and inside the transaction") {
  const std::string replays = "aftercommit_idempotent_replays_total";
  const std::string mismatch = R"(aftercommit_idempotency_conflicts_total{outcome="mismatch"})";
  const auto before = scrape();
  // Concurrent requests with one key: one runs the write, the others find
  // the stored response, before the transaction or inside it.
  constexpr int kRequests = 8;
  std::vector<int> replayed(kRequests, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      auto client = server.client();
      auto r = request(client, "POST", "/api/users", R"({"email": "replay@example.com"})",
                       "application/json", {{"Idempotency-Key", "metrics-replay-1"}});
      if (r.status == 201 && r.header("Idempotent-Replayed") == "true") replayed[i] = 1;
    });
  }
  for (auto& t : threads) t.join();
  int replayed_count = 0;
  for (int v : replayed) replayed_count += v;
  CHECK(replayed_count == kRequests - 1);
  auto later = request(http, "POST", "/api/users", R"({"email": "replay@example.com"})",
                       "application/json", {{"Idempotency-Key", "metrics-replay-1"}});
  CHECK(later.header("Idempotent-Replayed") == "true");
  auto other = request(http, "POST", "/api/users", R"({"email": "other@example.com"})",
                       "application/json", {{"Idempotency-Key", "metrics-replay-1"}});
  CHECK(other.status == 422);
  const auto after = scrape();
  CHECK(value(after, replays) - value(before, replays) == kRequests);  // 7 racing + 1 later
  CHECK(value(after, mismatch) - value(before, mismatch) == 1);
}

TEST_CASE("counts each key answer once by its kind, and nothing for a request that proceeds") {
  auto& in_use = app::idempotency_conflicts("in_use");
  auto& mismatch = app::idempotency_conflicts("mismatch");
  auto& replays = core::metrics::idempotent_replays();
  const auto in_use_before = in_use.value();
  const auto mismatch_before = mismatch.value();
  const auto replays_before = replays.value();
  app::count_key_answer(workflow::KeyAnswer::kInUse);
  app::count_key_answer(workflow::KeyAnswer::kProceed);
  app::count_key_answer(workflow::KeyAnswer::kMismatch);
  app::count_key_answer(workflow::KeyAnswer::kReplay);
  app::count_key_answer(workflow::KeyAnswer::kReplay);
  CHECK(in_use.value() - in_use_before == 1);
  CHECK(mismatch.value() - mismatch_before == 1);
  CHECK(replays.value() - replays_before == 2);
}

TEST_CASE_FIXTURE(Fixture,
                  "a keyed write refused with 409 or 422 by its route is no key conflict") {
  // The answer is counted from what the key said, not read back from the
  // reply: a route's own 409 and 422 leave the conflict counters alone.
  const std::string in_use = R"(aftercommit_idempotency_conflicts_total{outcome="in_use"})";
  const std::string mismatch = R"(aftercommit_idempotency_conflicts_total{outcome="mismatch"})";
  const auto before = scrape();
  auto created =
      request(http, "POST", "/products", R"({"name": "Lamp", "owner_email": "o@example.com"})",
              "application/json", {{"Idempotency-Key", "metrics-route-1"}});
  REQUIRE(created.status == 201);
  const std::string id = std::to_string(created.json()["id"].get<std::int64_t>());
  REQUIRE(request(http, "POST", "/products/" + id + "/approve", "", "application/json").status ==
          200);
  auto again = request(http, "POST", "/products/" + id + "/approve", "", "application/json",
                       {{"Idempotency-Key", "metrics-route-2"}});
  CHECK(again.status == 409);
  CHECK(again.json()["type"] == "/problems/invalid-transition");
  auto invalid = request(http, "POST", "/anagrams", R"({"words": []})", "application/json",
                         {{"Idempotency-Key", "metrics-route-3"}});
  CHECK(invalid.status == 422);
  const auto after = scrape();
  CHECK(value(after, in_use) - value(before, in_use) == 0);
  CHECK(value(after, mismatch) - value(before, mismatch) == 0);
}

namespace {

// A webhook receiver: 200 on /ok, 410 (refused for good) on /gone, 503
// (retried later) on /down.
class Receiver {
 public:
  Receiver() {
    server_.Post(".*", [](const httplib::Request& req, httplib::Response& res) {
      res.status = req.path == "/ok" ? 200 : req.path == "/gone" ? 410 : 503;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = testing::listen_in_background(server_);
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

TEST_CASE("counts webhook delivery attempts by outcome") {
  Receiver receiver;
  testing::TempDir dir;
  auto config = testing::test_config(dir);
  config.webhook_urls = {receiver.url("/ok"), receiver.url("/gone"), receiver.url("/down")};
  config.webhook_secret = "whsec_metrics";
  testing::InProcessServer server{config};
  auto http = server.client();
  auto scrape = [&] { return samples(request(http, "GET", "/metrics").body); };
  const auto key = [](const char* outcome) {
    return std::string(R"(aftercommit_webhook_deliveries_total{outcome=")") + outcome + "\"}";
  };
  const auto before = scrape();
  REQUIRE(request(http, "PUT", "/users/hooked%40example.com").status == 201);
  std::map<std::string, double> after;
  REQUIRE(testing::eventually([&] {
    after = scrape();
    return value(after, key("delivered")) > value(before, key("delivered")) &&
           value(after, key("discarded")) > value(before, key("discarded")) &&
           value(after, key("failed")) > value(before, key("failed"));
  }));
  // One event to three URLs: one attempt each so far (the 503 retries later).
  CHECK(value(after, key("delivered")) - value(before, key("delivered")) == 1);
  CHECK(value(after, key("discarded")) - value(before, key("discarded")) == 1);
  CHECK(value(after, key("failed")) - value(before, key("failed")) == 1);
}

TEST_CASE("exposes group commit batches and the phases they held") {
  const std::string batches = "aftercommit_db_group_commit_batches_total";
  const std::string phases = "aftercommit_db_group_commit_phases_total";
  const std::string reruns = "aftercommit_db_group_commit_phase_reruns_total";
  testing::TempDir dir;
  auto config = testing::test_config(dir);
  config.commit_mode = db::CommitMode::kGroup;
  testing::InProcessServer server{config};
  auto http = server.client();
  auto scrape = [&] { return samples(request(http, "GET", "/metrics").body); };
  const auto before = scrape();
  constexpr int kWriters = 16;
  std::vector<int> statuses(kWriters, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto client = server.client();
      statuses[i] =
          request(client, "PUT", "/users/batch-" + std::to_string(i) + "%40example.com").status;
    });
  }
  for (auto& t : threads) t.join();
  for (int s : statuses) CHECK(s == 201);
  const auto after = scrape();
  const double batch_delta = value(after, batches) - value(before, batches);
  const double phase_delta = value(after, phases) - value(before, phases);
  CHECK(batch_delta >= 1);
  CHECK(phase_delta >= kWriters);  // every create committed in some batch
  CHECK(phase_delta >= batch_delta);
  CHECK(value(after, reruns) == 0);  // no phase failed, so no batch was lost
  MESSAGE("group commit: ", phase_delta, " phases in ", batch_delta, " batches");
}

TEST_CASE("reports no group commit batches in per-request mode") {
  testing::TempDir dir;
  auto config = testing::test_config(dir);
  config.commit_mode = db::CommitMode::kPerRequest;
  testing::InProcessServer server{config};
  auto http = server.client();
  REQUIRE(request(http, "PUT", "/users/single%40example.com").status == 201);
  const auto s = samples(request(http, "GET", "/metrics").body);
  CHECK(s.count("aftercommit_db_group_commit_batches_total") == 1);
  CHECK(value(s, "aftercommit_db_group_commit_batches_total") == 0);
  CHECK(value(s, "aftercommit_db_commits_total") >= 1);
}
