// Security: the admin token on every route showing job or operational data
// (http/auth.h), how a request presents it (RFC 9110 §11), the default bind
// address, and what the logs must never carry (tokens, bodies, emails).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "http/auth.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

constexpr char kToken[] = "s3cret-admin-token-7f1d";

httplib::Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// A job in state `available` that the runner will not take for a while: its
// user's welcome job, cancelled before the runner sees it is not guaranteed,
// so the tests below only need a job id that exists.
std::int64_t some_job_id(httplib::Client& http, const httplib::Headers& auth = {}) {
  REQUIRE(request(http, "PUT", "/users/owner%40example.com").status == 201);
  auto jobs = request(http, "GET", "/jobs?limit=1", "", "", auth).json()["jobs"];
  REQUIRE(jobs.size() == 1);
  return jobs[0]["id"].get<std::int64_t>();
}

void check_unauthorized(const testing::HttpResult& r) {
  CHECK(r.status == 401);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(r.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(r.json()["type"] == "/problems/unauthorized");
  CHECK(r.json()["status"] == 401);
}

// Captures this process's stderr (where the server logs) into a file while alive.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  std::string finish() {
    restore();
    std::ifstream in(path_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("with an admin token, job writes and /metrics need it") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.admin_token = kToken;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  const std::int64_t id = some_job_id(http, bearer(kToken));
  const std::string job = "/jobs/" + std::to_string(id);

  check_unauthorized(request(http, "POST", job + "/cancel"));
  check_unauthorized(request(http, "POST", job + "/retry"));
  check_unauthorized(request(http, "POST", job + "/cancel", "", "", bearer("wrong")));
  check_unauthorized(
      request(http, "POST", job + "/cancel", "", "", bearer(kToken + std::string("x"))));
  check_unauthorized(request(http, "POST", job + "/cancel", "", "", bearer("")));
  check_unauthorized(
      request(http, "POST", job + "/cancel", "", "", {{"Authorization", std::string(kToken)}}));
  check_unauthorized(request(http, "POST", job + "/cancel", "", "",
                             {{"Authorization", "Basic " + std::string(kToken)}}));
  check_unauthorized(request(http, "POST", "/jobs/999999/retry"));  // no existence oracle
  check_unauthorized(request(http, "GET", "/metrics"));

  // The right token passes the check (the route then answers as usual).
  auto cancel = request(http, "POST", job + "/cancel", "", "", bearer(kToken));
  CHECK((cancel.status == 200 || cancel.status == 409));
  auto retry = request(http, "POST", "/jobs/999999/retry", "", "", bearer(kToken));
  CHECK(retry.status == 404);
  CHECK(request(http, "GET", "/metrics", "", "", bearer(kToken)).status != 401);

  // A refused request's body is consumed: the keep-alive connection goes on.
  check_unauthorized(request(http, "POST", job + "/cancel", R"({"pad": "x"})"));
  CHECK(request(http, "GET", "/healthz").status == 200);
  check_unauthorized(request(http, "POST", job + "/retry", std::string(5000, ' ') + "{}"));
  CHECK(request(http, "PUT", "/users/next%40example.com").status == 201);
}

TEST_CASE("with an admin token, every route showing job or operational data needs it") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.admin_token = kToken;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  const std::int64_t id = some_job_id(http, bearer(kToken));
  const std::string job = "/jobs/" + std::to_string(id);
  // Job arguments hold emails, phone numbers and webhook payloads; the
  // dashboard's reads hold emails and counts.
  for (const std::string& path : {std::string("/jobs"), std::string("/jobs?state=completed"), job,
                                  std::string("/jobs/999999"), std::string("/api/stats"),
                                  std::string("/api/audit"), std::string("/api/messages?limit=5"),
                                  std::string("/api/throughput"), std::string("/metrics")}) {
    CAPTURE(path);
    const auto anonymous = request(http, "GET", path);
    check_unauthorized(anonymous);
    CHECK(anonymous.body.find("owner@example.com") == std::string::npos);
    const auto with_token = request(http, "GET", path, "", "", bearer(kToken));
    CHECK(with_token.status != 401);
  }
  check_unauthorized(request(http, "POST", "/jobs/retry", R"({"state": "discarded"})"));
  CHECK(request(http, "GET", job, "", "", bearer(kToken)).json()["id"] == id);

  // What stays open: health, the API description, the dashboard's page and
  // files (no data in them), and the business API.
  for (const std::string& path :
       {std::string("/healthz"), std::string("/openapi.json"), std::string("/"),
        std::string("/dashboard.js"), std::string("/dashboard.css"), std::string("/users/1"),
        std::string("/users/1/actions"), std::string("/mailbox?to=owner%40example.com")}) {
    CAPTURE(path);
    CHECK(request(http, "GET", path).status == 200);
  }
  CHECK(request(http, "PUT", "/users/other%40example.com").status == 201);
  CHECK(request(http, "POST", "/anagrams", R"({"words": ["listen"]})").status == 200);
}

TEST_CASE("the Bearer scheme is case-insensitive and may be followed by several spaces") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.admin_token = kToken;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  const std::string token(kToken);
  // RFC 9110 §11.1: the scheme is case-insensitive; §11.4: 1*SP before the token.
  for (const std::string& value :
       std::vector<std::string>{"Bearer " + token, "bearer " + token, "BEARER " + token,
                                "bEaReR " + token, "Bearer  " + token, "Bearer    " + token}) {
    CAPTURE(value);
    CHECK(request(http, "GET", "/jobs", "", "", {{"Authorization", value}}).status == 200);
  }
  for (const std::string& value : std::vector<std::string>{
           "Bearer" + token, "Bearer", "Bearer ", "Bearer\t" + token, "Bearers " + token,
           "Basic " + token, "Bearer " + token + " x", "Bearer " + token.substr(1)}) {
    CAPTURE(value);
    check_unauthorized(request(http, "GET", "/jobs", "", "", {{"Authorization", value}}));
  }
}

TEST_CASE("bearer_token reads the scheme case-insensitively and the token after 1+ spaces") {
  CHECK(app::bearer_token("Bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(app::bearer_token("bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(app::bearer_token("BEARER   abc") == std::optional<std::string_view>("abc"));
  CHECK(app::bearer_token("  Bearer abc  ") == std::optional<std::string_view>("abc"));
  CHECK_FALSE(app::bearer_token("Bearerabc"));
  CHECK_FALSE(app::bearer_token("Bearer "));
  CHECK_FALSE(app::bearer_token("Basic abc"));
  CHECK_FALSE(app::bearer_token(""));
}

TEST_CASE("an admin token with leading or trailing whitespace is refused at start-up" *
          doctest::test_suite("variant_independent")) {
  for (const char* token : {"abc123 ", " abc123", "abc123\t"}) {
    CAPTURE(token);
    testing::TempDir dir;
    auto [code, out] = testing::run_binary({"serve", "--port", "0", "--db", dir.file("ws.db")},
                                           {std::string("AFTERCOMMIT_ADMIN_TOKEN=") + token});
    CAPTURE(out);
    CHECK(code == 2);
    CHECK(out.rfind("aftercommit: --admin-token (AFTERCOMMIT_ADMIN_TOKEN): ", 0) == 0);
    CHECK(out.find("whitespace") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("ws.db")));  // refused before anything started
  }
}

TEST_CASE("without an admin token, job writes are open") {
  testing::TempDir dir;
  testing::InProcessServer server(testing::test_config(dir));
  auto http = server.client();
  const std::int64_t id = some_job_id(http);
  auto r = request(http, "POST", "/jobs/" + std::to_string(id) + "/cancel");
  CHECK((r.status == 200 || r.status == 409));
}

TEST_CASE("the admin token can come from AFTERCOMMIT_ADMIN_TOKEN") {
  testing::TempDir dir;
  ::setenv("AFTERCOMMIT_ADMIN_TOKEN", kToken, 1);
  testing::ServerProcess server(testing::test_db(dir, "env.db"));
  ::unsetenv("AFTERCOMMIT_ADMIN_TOKEN");
  auto http = server.client();
  check_unauthorized(request(http, "POST", "/jobs/1/cancel"));
  check_unauthorized(request(http, "GET", "/jobs"));
  CHECK(request(http, "POST", "/jobs/1/cancel", "", "", bearer(kToken)).status == 404);
}

TEST_CASE("binds to 127.0.0.1 by default") {
  app::Config defaults;
  CHECK(defaults.bind == "127.0.0.1");
  testing::TempDir dir;
  testing::ServerProcess server(testing::test_db(dir, "bind.db"));
  CHECK(server.url().rfind("http://127.0.0.1:", 0) == 0);
}

TEST_CASE("logs carry no token, no body, no email address") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.admin_token = kToken;
  std::string log;
  {
    StderrCapture capture(dir.file("stderr.log"));
    {
      testing::InProcessServer server(cfg);
      auto http = server.client();
      request(http, "PUT", "/users/private.person%40example.com");
      request(http, "PUT", "/users?email=query.person%40example.com");
      request(http, "POST", "/api/users", R"({"email": "body.person@example.com"})");
      request(http, "POST", "/jobs/1/cancel", "", "", bearer(kToken));
      request(http, "POST", "/jobs/1/cancel", "", "", bearer("guessed-token"));
      request(http, "PUT", "/users/a%0D%0Afake-log-line%40example.com");
    }
    log = capture.finish();
  }
  CAPTURE(log);
  CHECK(log.find("PUT") != std::string::npos);   // requests are logged...
  CHECK(log.find(kToken) == std::string::npos);  // ...but not what they carry
  CHECK(log.find("guessed-token") == std::string::npos);
  CHECK(log.find("private.person") == std::string::npos);
  CHECK(log.find("query.person") == std::string::npos);
  CHECK(log.find("body.person") == std::string::npos);
  CHECK(log.find("\nfake-log-line") == std::string::npos);
}
