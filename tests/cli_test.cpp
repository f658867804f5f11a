// The command line: --version, --help with examples, `migrate`, `jobs
// list|retry|cancel` and `stats` on a database file, AFTERCOMMIT_* variables,
// and the flag table in README.md.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

#include "app/config.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "db/database.h"
#include "db/jobs.h"
#include "tests/support/harness.h"

using testing::run_binary;

namespace {

// A migrated database with three jobs: 1 available, 2 discarded, 3 completed.
void seed_jobs(const std::string& path) {
  db::Options o;
  db::set_target(o, path);
  auto opened = db::Database::open(o);
  REQUIRE(opened.is_ok());
  db::Database& database = **opened;
  const core::Millis now = 1'700'000'000'000;
  REQUIRE(database
              .write([&](db::Tx& tx) {
                for (int i = 0; i < 3; ++i) {
                  db::NewJob job;
                  job.kind = "send_welcome_email";
                  job.args_json = R"({"user_id": 1, "email": "x@example.com"})";
                  job.max_attempts = 1;
                  REQUIRE(db::stage_job(tx, job, now).has_value());
                }
                return core::Status::ok();
              })
              .is_ok());
  REQUIRE(database
              .write([&](db::Tx& tx) {
                auto claimed = db::claim_jobs(tx, 2, now, now + 1000);
                REQUIRE(claimed.size() == 2);
                REQUIRE(db::fail_job(tx, 1, 1, "smtp said no", now, now, /*discard=*/true));
                REQUIRE(db::complete_job(tx, 2, 1, now));
                return core::Status::ok();
              })
              .is_ok());
}

}  // namespace

TEST_CASE("prints the version" * doctest::test_suite("variant_independent")) {
  auto [rc, out] = run_binary({"--version"});
  CHECK(rc == 0);
  CHECK(out.find(std::string("aftercommit ") + AFTERCOMMIT_VERSION) != std::string::npos);
}

TEST_CASE("each command's --help shows examples and the environment variables" *
          doctest::test_suite("variant_independent")) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"serve", "--help"},
                                             {"migrate", "--help"},
                                             {"jobs", "--help"},
                                             {"jobs", "list", "--help"},
                                             {"jobs", "retry", "--help"},
                                             {"jobs", "cancel", "--help"},
                                             {"stats", "--help"}}) {
    CAPTURE(args.front());
    auto [rc, out] = run_binary(args);
    CAPTURE(out);
    CHECK(rc == 0);
    CHECK(out.find("Examples:") != std::string::npos);
    CHECK(out.find("aftercommit ") != std::string::npos);
  }
  auto [rc, out] = run_binary({"serve", "--help"});
  CHECK(out.find("AFTERCOMMIT_DB") != std::string::npos);
  CHECK(out.find("AFTERCOMMIT_LOG_FORMAT") != std::string::npos);
}

TEST_CASE("migrate creates the database and prints its schema version, then says it is current") {
  testing::TempDir dir;
  const std::string path = testing::test_db(dir, "new.db");
  auto [rc, out] = run_binary({"migrate", "--db", path});
  CAPTURE(out);
  CHECK(rc == 0);
  CHECK(std::regex_search(out, std::regex("schema version [1-9][0-9]* \\(migrated from 0\\)")));
  if (!testing::on_postgres()) CHECK(std::filesystem::exists(path));
  auto [rc2, out2] = run_binary({"migrate", "--db", path});
  CHECK(rc2 == 0);
  CHECK(out2.find("(up to date)") != std::string::npos);
}

TEST_CASE(
    "SQLite: refuses to touch a file that is not a database, and does not create a missing one" *
    doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string junk = dir.file("junk.db");
  std::ofstream(junk) << "this is not sqlite, just text that is long enough to be a header";
  auto [rc, out] = run_binary({"migrate", "--db", junk});
  CHECK(rc == 1);
  CHECK(out.find("junk.db") != std::string::npos);

  const std::string missing = dir.file("missing.db");
  auto [rc2, out2] = run_binary({"stats", "--db", missing});
  CHECK(rc2 == 1);
  CHECK(out2.find("no database at") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(missing));
}

TEST_CASE("SQLite: migrate and serve refuse another program's database and leave its bytes alone" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  auto read_all = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  int n = 0;
  for (const char* schema : {"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); "
                             "INSERT INTO notes (body) VALUES ('remember the milk')",
                             "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); "
                             "INSERT INTO users (name) VALUES ('ada')"}) {
    CAPTURE(schema);
    const std::string path = dir.file("theirs-" + std::to_string(++n) + ".sqlite");
    {
      SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      raw.exec(schema);
    }
    const std::string before = read_all(path);
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"migrate", "--db", path}, {"serve", "--db", path, "--port", "0"}}) {
      CAPTURE(args.front());
      auto [rc, out] = run_binary(args);
      CAPTURE(out);
      CHECK(rc == 1);
      CHECK(std::count(out.begin(), out.end(), '\n') == 1);
      CHECK(out.find("is not an aftercommit database") != std::string::npos);
      CHECK(out.find(path) != std::string::npos);
      CHECK(read_all(path) == before);  // not even switched to WAL
      CHECK_FALSE(std::filesystem::exists(path + "-wal"));
    }
  }
}

TEST_CASE("jobs list, retry and cancel work on the file directly") {
  testing::TempDir dir;
  const std::string path = testing::test_db(dir, "jobs.db");
  seed_jobs(path);

  auto [rc, table] = run_binary({"jobs", "list", "--db", path});
  CAPTURE(table);
  CHECK(rc == 0);
  CHECK(table.find("discarded") != std::string::npos);
  CHECK(table.find("smtp said no") != std::string::npos);

  auto [rc_json, lines] =
      run_binary({"jobs", "list", "--db", path, "--state", "discarded", "--json"});
  CHECK(rc_json == 0);
  auto job = nlohmann::json::parse(lines.substr(0, lines.find('\n')));
  CHECK(job["id"] == 1);
  CHECK(job["errors"][0]["message"] == "smtp said no");

  auto [rc_retry, retried] = run_binary({"jobs", "retry", "1", "--db", path, "--json"});
  CAPTURE(retried);
  CHECK(rc_retry == 0);
  CHECK(nlohmann::json::parse(retried)["state"] == "available");

  auto [rc_cancel, cancelled] = run_binary({"jobs", "cancel", "3", "--db", path});
  CHECK(rc_cancel == 0);
  CHECK(cancelled.find("is now cancelled") != std::string::npos);

  // A completed job can be neither: exit 1, the reason names the state, nothing changes.
  auto [rc_refused, refused] = run_binary({"jobs", "cancel", "2", "--db", path});
  CHECK(rc_refused == 1);
  CHECK(refused.find("completed") != std::string::npos);
  auto [rc_missing, missing] = run_binary({"jobs", "retry", "99", "--db", path});
  CHECK(rc_missing == 1);
  CHECK(missing.find("no job with id 99") != std::string::npos);

  auto [rc_list, after] = run_binary({"jobs", "list", "--db", path, "--json"});
  std::map<int, std::string> states;
  std::istringstream in(after);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    states[j["id"].get<int>()] = j["state"];
  }
  CHECK(states == std::map<int, std::string>{{1, "available"}, {2, "completed"}, {3, "cancelled"}});
}

TEST_CASE("stats reads AFTERCOMMIT_DB and prints counts as text or JSON") {
  testing::TempDir dir;
  const std::string path = testing::test_db(dir, "stats.db");
  seed_jobs(path);
  ::setenv("AFTERCOMMIT_DB", path.c_str(), 1);
  auto [rc, text] = run_binary({"stats"});
  auto [rc_json, json_text] = run_binary({"stats", "--json"});
  ::unsetenv("AFTERCOMMIT_DB");
  CAPTURE(text);
  CHECK(rc == 0);
  CHECK(text.find("discarded=1") != std::string::npos);
  CHECK(rc_json == 0);
  auto j = nlohmann::json::parse(json_text);
  CHECK(j["jobs"]["completed"] == 1);
  CHECK(j["jobs"]["available"] == 1);
  CHECK(j["users"] == 0);
  CHECK(j["schema_version"].get<int>() >= 1);
}

TEST_CASE("README.md lists every flag of serve with its environment variable" *
          doctest::test_suite("variant_independent")) {
  std::ifstream f(std::string(AFTERCOMMIT_SOURCE_DIR) + "/README.md");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string docs = ss.str();
  REQUIRE(!docs.empty());
  auto [rc, help] = run_binary({"serve", "--help"});
  REQUIRE(rc == 0);
  // CLI11 prints "  --port INT:INT in [0 - 65535] ... (Env:AFTERCOMMIT_PORT)".
  std::regex flag_line(R"((--[a-z-]+)[^\n]*\(Env:(AFTERCOMMIT_[A-Z_]+)\))");
  int flags = 0;
  for (std::sregex_iterator it(help.begin(), help.end(), flag_line), end; it != end; ++it) {
    const std::string row = "| `" + (*it)[1].str() + "` | `" + (*it)[2].str() + "` |";
    CAPTURE(row);
    CHECK(docs.find(row) != std::string::npos);
    ++flags;
  }
  CHECK(flags >= 12);
}

TEST_CASE("stats and jobs list read a database that a running server is writing") {
  testing::TempDir dir;
  const std::string path = testing::test_db(dir, "live.db");
  testing::ServerProcess server(path);
  auto http = server.client();
  REQUIRE(testing::request(http, "PUT", "/users/live%40example.com").status == 201);
  auto [rc, out] = run_binary({"stats", "--json", "--db", path});
  CAPTURE(out);
  REQUIRE(rc == 0);
  CHECK(nlohmann::json::parse(out)["users"] == 1);
  auto [rc_list, list] = run_binary({"jobs", "list", "--json", "--db", path});
  CHECK(rc_list == 0);
  CHECK(nlohmann::json::parse(list.substr(0, list.find('\n')))["kind"] == "send_welcome_email");
  CHECK(server.terminate_and_wait() == 0);
}

// --- durations, exit codes, URLs (README "Command line") ---

namespace {

// `serve` with `args`: {exit code, output}. The database would go in a
// directory that does not exist, so a configuration that passes fails right
// after (exit 1) instead of serving; a refusal comes first (exit 2).
std::pair<int, std::string> serve_refusal(const testing::TempDir& dir,
                                          std::vector<std::string> args,
                                          const std::vector<std::string>& env = {}) {
  std::vector<std::string> full = {"serve", "--port", "0", "--db",
                                   dir.file("no-such-directory/refused.db")};
  full.insert(full.end(), args.begin(), args.end());
  return run_binary(full, env);
}

}  // namespace

TEST_CASE("every duration flag reads 250ms, 30s, 5m, 24h and a bare number of ms alike" *
          doctest::test_suite("variant_independent")) {
  CHECK(app::parse_duration_ms("250ms") == 250);
  CHECK(app::parse_duration_ms("30s") == 30'000);
  CHECK(app::parse_duration_ms("5m") == 300'000);
  CHECK(app::parse_duration_ms("24h") == 86'400'000);
  CHECK(app::parse_duration_ms("1500") == 1500);
  CHECK_FALSE(app::parse_duration_ms("30x"));
  CHECK_FALSE(app::parse_duration_ms("s"));
  CHECK_FALSE(app::parse_duration_ms("-5s"));
  CHECK_FALSE(app::parse_duration_ms("1.5s"));
  CHECK(app::format_duration(90'000) == "90s");
  CHECK(app::format_duration(1500) == "1500ms");

  // Every flag whose value is a time is a DURATION in --help, for serve and
  // for the commands that work on the file.
  auto [rc, help] = run_binary({"serve", "--help"});
  REQUIRE(rc == 0);
  std::regex timed(
      R"((--[a-z-]*(timeout|lease|ttl|after|backoff-base|backoff-cap|retention))\s+(\S+))");
  int durations = 0;
  for (std::sregex_iterator it(help.begin(), help.end(), timed), end; it != end; ++it) {
    CAPTURE((*it)[1].str());
    CHECK((*it)[3].str().rfind("DURATION", 0) == 0);  // "DURATION=30s": its default
    ++durations;
  }
  CHECK(durations == 13);
  auto [rc2, migrate_help] = run_binary({"migrate", "--help"});
  CHECK(migrate_help.find("--busy-timeout DURATION") != std::string::npos);

  // The binary takes every form on every one of them (it starts serving).
  testing::TempDir dir;
  testing::ServerProcess server(dir.file("durations.db"), {"--job-lease",
                                                           "30s",
                                                           "--busy-timeout",
                                                           "250ms",
                                                           "--shutdown-timeout",
                                                           "5000",
                                                           "--idempotency-lock-timeout",
                                                           "2m",
                                                           "--idempotency-ttl",
                                                           "24h",
                                                           "--completer-after",
                                                           "5m",
                                                           "--gateway-timeout",
                                                           "1500ms",
                                                           "--job-backoff-base",
                                                           "2s",
                                                           "--job-backoff-cap",
                                                           "1h",
                                                           "--job-retention",
                                                           "168h",
                                                           "--webhook-timeout",
                                                           "10s",
                                                           "--read-timeout",
                                                           "10s",
                                                           "--idle-timeout",
                                                           "5s"});
  auto http = server.client();
  CHECK(testing::request(http, "GET", "/healthz").status == 200);
}

TEST_CASE("a bad duration is refused with exit code 2 and a line naming the flag" *
          doctest::test_suite("variant_independent")) {
  testing::TempDir dir;
  for (const auto& [flag, value] :
       std::vector<std::pair<std::string, std::string>>{{"--job-lease", "30x"},
                                                        {"--job-lease", "50ms"},
                                                        {"--idempotency-ttl", "soon"},
                                                        {"--gateway-timeout", "11m"},
                                                        {"--read-timeout", ""}}) {
    CAPTURE(flag);
    CAPTURE(value);
    auto [code, out] = serve_refusal(dir, {flag, value});
    CAPTURE(out);
    CHECK(code == 2);
    CHECK(out.find(flag) != std::string::npos);
  }
  auto [code, out] = serve_refusal(dir, {}, {"AFTERCOMMIT_JOB_LEASE=2q"});
  CHECK(code == 2);
  CHECK(out.find("--job-lease") != std::string::npos);
}

TEST_CASE("a job backoff under a second and an idle timeout that is not whole seconds are refused" *
          doctest::test_suite("variant_independent")) {
  testing::TempDir dir;
  auto [code, out] = serve_refusal(dir, {"--job-backoff-base", "500ms"});
  CAPTURE(out);
  CHECK(code == 2);
  CHECK(out.find("--job-backoff-base") != std::string::npos);
  CHECK(out.find("1s") != std::string::npos);
  auto [code2, out2] = serve_refusal(dir, {"--idle-timeout", "1500ms"});
  CAPTURE(out2);
  CHECK(code2 == 2);
  CHECK(out2.find("--idle-timeout: must be a whole number of seconds") != std::string::npos);
}

TEST_CASE("exit codes: 0 done, 1 the command failed, 2 the command line or configuration is wrong" *
          doctest::test_suite("variant_independent")) {
  testing::TempDir dir;
  CHECK(run_binary({"--help"}).first == app::kExitOk);
  CHECK(run_binary({"--version"}).first == 0);
  // 2: CLI11's own refusals (its codes 105, 106, 109 ...) and Config::validate's.
  CHECK(run_binary({"--no-such-flag"}).first == 2);
  CHECK(run_binary({}).first == 2);                                  // no command
  CHECK(serve_refusal(dir, {"--port", "99999"}).first == 2);         // value out of range
  CHECK(serve_refusal(dir, {"--port", "eighty"}).first == 2);        // not a number
  CHECK(serve_refusal(dir, {"--synchronous", "maybe"}).first == 2);  // not a choice
  CHECK(run_binary({"jobs", "retry"}).first == 2);                   // missing id
  CHECK(serve_refusal(dir, {"--webhook-url", "http://a.example/"}).first == 2);  // no secret
  CHECK(serve_refusal(dir, {"--max-connections", "1"}).first == app::kExitUsage);
  // 1: the command ran and failed.
  const std::string path = dir.file("jobs.db");
  seed_jobs(path);
  CHECK(run_binary({"jobs", "retry", "999", "--db", path}).first == app::kExitFailed);
  CHECK(run_binary({"stats", "--db", dir.file("missing.db")}).first == 1);
  const std::string junk = dir.file("junk.db");
  std::ofstream(junk) << std::string(4096, 'x');
  CHECK(run_binary({"serve", "--port", "0", "--db", junk}).first == 1);
  CHECK(run_binary({"jobs", "retry", "1", "--db", path}).first == 0);  // job 1 is discarded
}

TEST_CASE("SQLite: migrate creates the directory its --db file goes in" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("fresh checkout/data/aftercommit.db");
  auto [rc, out] = run_binary({"migrate", "--db", path});
  CAPTURE(out);
  CHECK(rc == 0);
  CHECK(out.find("schema version") != std::string::npos);
  CHECK(std::filesystem::exists(path));
}

TEST_CASE(
    "webhook URLs: a comma-separated list, each parsed at start-up or refused naming the flag" *
    doctest::test_suite("variant_independent")) {
  testing::TempDir dir;
  const std::vector<std::string> secret = {"--webhook-secret", "s"};
  for (const std::string bad :
       {"http://a.example/in http://b.example/in", "http://a.example/in|http://b.example/in",
        "ftp://a.example/", "http://:8080/in", "http://a.example:99999/", "http://a.example:x/",
        "a.example/in", "http://user:pw@a.example/", "http://a.example/in,ftp://b.example/",
        "http://a.example/in,", ",http://a.example/in", "http://a.example/in,,http://b.example/",
        ","}) {
    CAPTURE(bad);
    auto [code, out] = serve_refusal(dir, secret, {"AFTERCOMMIT_WEBHOOK_URL=" + bad});
    CAPTURE(out);
    CHECK(code == 2);
    CHECK(out.rfind("aftercommit: --webhook-url (AFTERCOMMIT_WEBHOOK_URL): ", 0) == 0);
    CHECK(out.find('\n') == out.size() - 1);
  }
  {  // A trailing comma is refused as such, not read as a list one URL shorter.
    auto [code, out] = serve_refusal(dir, secret, {"AFTERCOMMIT_WEBHOOK_URL=http://a.example/in,"});
    CHECK(code == 2);
    CHECK(out.find("empty element") != std::string::npos);
  }
  std::vector<std::string> split;
  REQUIRE(
      app::split_url_list({"http://a.example/x,http://b.example/y", "http://c.example/"}, split));
  CHECK(split ==
        std::vector<std::string>{"http://a.example/x", "http://b.example/y", "http://c.example/"});
  auto parsed = app::parse_http_url("https://hooks.example:8443/in?x=1");
  REQUIRE(parsed);
  CHECK(parsed->scheme == "https");
  CHECK(parsed->host == "hooks.example");
  CHECK(parsed->port == 8443);
  CHECK(parsed->path == "/in?x=1");
  CHECK(app::parse_http_url("http://[::1]:9000")->port == 9000);
  CHECK(app::parse_http_url("http://127.0.0.1")->port == 80);

  // A list in the variable: every event goes to each URL.
  ::setenv("AFTERCOMMIT_WEBHOOK_URL", "http://127.0.0.1:9/a,http://127.0.0.1:9/b", 1);
  ::setenv("AFTERCOMMIT_WEBHOOK_SECRET", "s", 1);
  testing::ServerProcess server(dir.file("hooks.db"));
  ::unsetenv("AFTERCOMMIT_WEBHOOK_URL");
  ::unsetenv("AFTERCOMMIT_WEBHOOK_SECRET");
  auto http = server.client();
  REQUIRE(testing::request(http, "PUT", "/users/hook%40example.com").status == 201);
  auto jobs = testing::request(http, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
  std::set<std::string> urls;
  for (const auto& j : jobs) urls.insert(j["args"]["url"].get<std::string>());
  CHECK(urls == std::set<std::string>{"http://127.0.0.1:9/a", "http://127.0.0.1:9/b"});
}
