// GET /metrics and the registry behind it: the text format (checked by
// Prometheus's own parser, promtool), request counts by route template and
// status, transaction counters, job gauges and the job histograms.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "core/metrics.h"
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
  const int rc = std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
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
        "aftercommit_webhook_deliveries_total", "aftercommit_build_info"}) {
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
  // The logger hook counts after the response is written: wait for it.
  std::map<std::string, double> after;
  REQUIRE(testing::eventually([&] {
    after = scrape();
    return value(after, unmatched) - value(before, unmatched) >= 1;
  }));
  CHECK(value(after, created) - value(before, created) == 2);
  CHECK(value(after, existing) - value(before, existing) == 1);
  for (const auto& [key, v] : after) {
    CAPTURE(key);
    CHECK(key.find("route-a") == std::string::npos);
  }
  const std::string latency =
      R"(aftercommit_http_request_duration_seconds_count{method="PUT",route="/users/{user}"})";
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
  CHECK(value(after, R"(aftercommit_jobs{kind="send_welcome_email",state="available"})") == 0);
  CHECK(value(after, R"(aftercommit_jobs{kind="send_welcome_email",state="discarded"})") == 0);
  // The create, the runner's claim and its completion: three write transactions at least.
  CHECK(value(after, "aftercommit_db_tx_attempts_total") -
            value(before, "aftercommit_db_tx_attempts_total") >=
        3);
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
