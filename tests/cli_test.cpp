// The command line: --version, --help with examples, `migrate`, `jobs
// list|retry|cancel` and `stats` on a database file, AFTERCOMMIT_* variables,
// and the flag table in README.md.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
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

#include "core/clock.h"
#include "db/database.h"
#include "db/jobs.h"
#include "tests/support/harness.h"

using testing::run_binary;

namespace {

// A migrated database with three jobs: 1 available, 2 discarded, 3 completed.
void seed_jobs(const std::string& path) {
  db::Options o;
  o.path = path;
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

TEST_CASE("prints the version") {
  auto [rc, out] = run_binary({"--version"});
  CHECK(rc == 0);
  CHECK(out.find(std::string("aftercommit ") + AFTERCOMMIT_VERSION) != std::string::npos);
}

TEST_CASE("each command's --help shows examples and the environment variables") {
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
  const std::string path = dir.file("new.db");
  auto [rc, out] = run_binary({"migrate", "--db", path});
  CAPTURE(out);
  CHECK(rc == 0);
  CHECK(std::regex_search(out, std::regex("schema version [1-9][0-9]* \\(migrated from 0\\)")));
  CHECK(std::filesystem::exists(path));
  auto [rc2, out2] = run_binary({"migrate", "--db", path});
  CHECK(rc2 == 0);
  CHECK(out2.find("(up to date)") != std::string::npos);
}

TEST_CASE("refuses to touch a file that is not a database, and does not create a missing one") {
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

TEST_CASE("migrate and serve refuse another program's database and leave its bytes alone") {
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
  const std::string path = dir.file("jobs.db");
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
  const std::string path = dir.file("stats.db");
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

TEST_CASE("README.md lists every flag of serve with its environment variable") {
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
  const std::string path = dir.file("live.db");
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
