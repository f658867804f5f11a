// The built-in dashboard: the page and its assets come from the binary and
// load nothing from elsewhere; the JSON reads it polls answer what the
// database holds.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/harness.h"

using testing::request;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::InProcessServer server{testing::test_config(dir)};
  httplib::Client http = server.client();
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
  CHECK(page.find("id=\"burst\"") != std::string::npos);
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
