// Structured logs: one line per request and per job attempt, in text or JSON
// (--log-format), carrying the request id the client sees as X-Request-Id,
// and never the query string.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/log.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

// Sends this process's stderr to a file for the scope's life.
class CapturedStderr {
 public:
  explicit CapturedStderr(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~CapturedStderr() {
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;

  std::vector<std::string> lines() const {
    std::ifstream f(path_);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(f, line)) out.push_back(line);
    return out;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

struct JsonLogs {
  testing::TempDir dir;
  CapturedStderr captured{dir.file("stderr.log")};
  std::string db_path;
  testing::InProcessServer server{[this] {
    auto c = testing::test_config(dir);
    db_path = c.db_path;
    c.log_format = core::log::Format::kJson;
    return c;
  }()};
  httplib::Client http = server.client();

  ~JsonLogs() { core::log::set_format(core::log::Format::kText); }

  // The first JSON line with this event whose `key` equals `value`.
  nlohmann::json find(const std::string& event, const std::string& key, const nlohmann::json& v) {
    nlohmann::json found;
    testing::eventually([&] {
      for (const auto& line : captured.lines()) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.value("event", "") == event && j.contains(key) && j[key] == v) {
          found = j;
          return true;
        }
      }
      return false;
    });
    return found;
  }
};

}  // namespace

TEST_CASE_FIXTURE(JsonLogs, "writes one JSON line per request with the id sent as X-Request-Id") {
  auto r = request(http, "PUT", "/users?email=secret%40example.com");
  REQUIRE(r.status == 201);
  const std::string id = r.header("X-Request-Id");
  REQUIRE(!id.empty());
  auto line = find("request", "request_id", id);
  REQUIRE(line.is_object());
  CHECK(line["level"] == "info");
  CHECK(line["method"] == "PUT");
  CHECK(line["route"] == "/users");
  CHECK(line["path"] == "/users");
  CHECK(line["status"] == 201);
  CHECK(line["tx_attempts"] == 1);
  CHECK(line["duration_us"].get<std::int64_t>() > 0);
  CHECK(line["ts"].get<std::string>().size() == 24);
  for (const auto& l : captured.lines()) {
    CAPTURE(l);
    CHECK(l.find("secret") == std::string::npos);  // the query string is never logged
  }
}

TEST_CASE_FIXTURE(JsonLogs, "writes one JSON line per job attempt") {
  auto r = request(http, "POST", "/api/users", R"({"email": "joblog@example.com"})");
  REQUIRE(r.status == 201);
  auto line = find("job", "kind", "send_welcome_email");
  REQUIRE(line.is_object());
  CHECK(line["outcome"] == "ok");
  CHECK(line["attempt"] == 1);
  CHECK(line["job_id"].get<std::int64_t>() > 0);
  CHECK(line["commit_to_start_ms"].get<std::int64_t>() >= 0);
}

TEST_CASE_FIXTURE(JsonLogs, "keeps a sane incoming X-Request-Id and replaces anything else") {
  auto kept = request(http, "GET", "/healthz", "", "", {{"X-Request-Id", "lb-7f3a.42:x_y"}});
  CHECK(kept.header("X-Request-Id") == "lb-7f3a.42:x_y");
  CHECK(find("request", "request_id", "lb-7f3a.42:x_y").is_object());

  auto replaced = request(http, "GET", "/healthz", "", "", {{"X-Request-Id", "evil\" injected=1"}});
  CHECK(replaced.header("X-Request-Id").rfind("req-", 0) == 0);
  auto too_long =
      request(http, "GET", "/healthz", "", "", {{"X-Request-Id", std::string(200, 'a')}});
  CHECK(too_long.header("X-Request-Id").rfind("req-", 0) == 0);
  auto fresh_a = request(http, "GET", "/healthz");
  auto fresh_b = request(http, "GET", "/healthz");
  CHECK(fresh_a.header("X-Request-Id") != fresh_b.header("X-Request-Id"));
}

TEST_CASE_FIXTURE(JsonLogs, "labels an unknown route as unmatched") {
  auto r = request(http, "GET", "/nope/42");
  REQUIRE(r.status == 404);
  auto line = find("request", "request_id", r.header("X-Request-Id"));
  REQUIRE(line.is_object());
  CHECK(line["route"] == "unmatched");
  CHECK(line["path"] == "/nope/42");
  CHECK(line["status"] == 404);
}

TEST_CASE_FIXTURE(JsonLogs, "logs an internal error once with its request id, never the body") {
  {
    // Storage trouble the server cannot classify: the table is gone.
    testing::exec_sql(
        db_path, testing::on_postgres() ? "DROP TABLE products CASCADE" : "DROP TABLE products");
  }
  auto r = request(http, "POST", "/products",
                   R"({"name": "secret-body-marker", "owner_email": "a@example.com"})");
  REQUIRE(r.status == 500);
  CHECK(r.json()["type"] == "/problems/internal");
  CHECK(r.body.find("products") == std::string::npos);  // the detail stays generic
  const std::string id = r.header("X-Request-Id");
  REQUIRE(find("request", "request_id", id).is_object());  // logged after the reply was made

  int errors = 0;
  for (const auto& l : captured.lines()) {
    CAPTURE(l);
    CHECK(l.find("secret-body-marker") == std::string::npos);
    auto j = nlohmann::json::parse(l, nullptr, false);
    if (!j.is_object() || j.value("event", "") != "internal_error") continue;
    ++errors;
    CHECK(j["level"] == "error");
    CHECK(j["request_id"] == id);
    CHECK(j["message"].get<std::string>().find("products") != std::string::npos);
  }
  CHECK(errors == 1);
}

TEST_CASE("formats text lines as key=value, quoting values that need it") {
  core::log::set_format(core::log::Format::kText);
  const std::string line = core::log::format_line(
      core::log::Level::kWarn, "job",
      {{"job_id", 7}, {"ok", false}, {"error", "said \"no\" twice"}, {"kind", "send_sms"}});
  CHECK(line.size() > 25);
  CHECK(line[23] == 'Z');
  CHECK(line.substr(24) ==
        R"( warn job job_id=7 ok=false error="said \"no\" twice" kind=send_sms)");
}

TEST_CASE("formats JSON lines as one valid object, replacing invalid UTF-8") {
  core::log::set_format(core::log::Format::kJson);
  const std::string line = core::log::format_line(core::log::Level::kError, "exception",
                                                  {{"error", std::string("bad \xff byte\n")}});
  core::log::set_format(core::log::Format::kText);
  auto j = nlohmann::json::parse(line);
  CHECK(j["level"] == "error");
  CHECK(j["event"] == "exception");
  CHECK(j["error"].get<std::string>().find("bad") == 0);
  CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("refuses a --log-format other than text or json" *
          doctest::test_suite("variant_independent")) {
  auto [rc, out] = testing::run_binary({"serve", "--log-format", "xml", "--port", "0"});
  CHECK(rc != 0);
  CHECK(out.find("--log-format") != std::string::npos);
}
