// Storage faults: a full disk, files the server must refuse to start on, and
// another process holding SQLite's write lock.
//
// - Disk full is simulated with PRAGMA max_page_count on the writer (hidden
//   flag --max-db-pages, Config::max_db_pages) over a file padded with a
//   "ballast" table; dropping the ballast from another connection gives the
//   space back without a restart, as freeing disk space would.
// - Start-up refusals run the real binary (as `nobody` where permissions
//   matter: root ignores file modes) and compare the file's bytes before and
//   after: one line on stderr, a non-zero exit, the file untouched.
// - The write lock is held by the real `sqlite3` CLI in BEGIN IMMEDIATE.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "tests/support/harness.h"

using testing::request;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::int64_t scalar(const std::string& db_path, const std::string& sql) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  REQUIRE(q.executeStep());
  return q.getColumn(0).getInt64();
}

// A database made by the server itself (schema applied, WAL checkpointed by
// a graceful stop), with one user.
void make_database(const testing::TempDir& dir, const std::string& path) {
  app::Config cfg = testing::test_config(dir);
  cfg.db_path = path;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  REQUIRE(request(http, "PUT", "/users/first%40example.com").status == 201);
}

// Runs the binary, optionally as `uid`, to completion: {exit code, output}.
std::pair<int, std::string> run_as(std::optional<uid_t> uid, const std::vector<std::string>& args) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::vector<std::string> full = {AFTERCOMMIT_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    if (uid) {
      if (::setgid(*uid) != 0 || ::setuid(*uid) != 0) ::_exit(126);
    }
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

constexpr uid_t kNobody = 65534;

// The refusal contract: non-zero exit (not a signal), exactly one line that
// names the program, and the file's bytes unchanged.
void expect_refused(const std::string& db_path, std::optional<uid_t> uid,
                    const std::string& must_mention) {
  const std::string before = read_bytes(db_path);
  auto [code, out] = run_as(uid, {"serve", "--port", "0", "--db", db_path});
  CAPTURE(out);
  CHECK(code > 0);
  CHECK(code != 126);  // setuid worked
  CHECK(out.rfind("aftercommit: ", 0) == 0);
  CHECK(out.find('\n') == out.size() - 1);  // one line
  CHECK(out.find(must_mention) != std::string::npos);
  CHECK(read_bytes(db_path) == before);
}

}  // namespace

TEST_CASE("a full disk answers 507, writes nothing half-way, serves reads and recovers") {
  testing::TempDir dir;
  const std::string path = dir.file("full.db");
  make_database(dir, path);
  std::int64_t pages = 0;
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("CREATE TABLE ballast (b BLOB NOT NULL)");
    db.exec(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) "
        "INSERT INTO ballast SELECT zeroblob(4000) FROM n");
    pages = db.execAndGet("PRAGMA page_count").getInt64();
  }

  app::Config cfg = testing::test_config(dir);
  cfg.db_path = path;
  cfg.max_db_pages = pages;  // the file may not grow at all
  cfg.job_lease_ms = 500;    // a job whose completion met the full disk is retried soon
  testing::InProcessServer server(cfg);
  auto http = server.client();

  // Fill what room the existing pages have, until the disk is "full".
  int created = 0;
  testing::HttpResult full;
  for (int i = 0; i < 5000 && full.status == 0; ++i) {
    auto r = request(http, "PUT", "/users/filler" + std::to_string(i) + "%40example.com");
    if (r.status == 201) {
      ++created;
    } else {
      full = r;
    }
  }
  REQUIRE(full.status == 507);
  CHECK(full.header("Content-Type") == "application/problem+json");
  CHECK(full.json()["type"] == "/problems/storage-full");
  CHECK(full.json()["status"] == 507);

  // Nothing half-written: every user has its audit row and its job, no more.
  const std::int64_t users = scalar(path, "SELECT count(*) FROM users");
  CHECK(users == created + 1);
  CHECK(scalar(path, "SELECT count(*) FROM user_actions WHERE action = 'created'") == users);
  CHECK(scalar(path, "SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email'") == users);

  // Reads keep working.
  CHECK(request(http, "GET", "/users/1").status == 200);
  CHECK(request(http, "GET", "/healthz").status == 200);
  CHECK(request(http, "GET", "/jobs?limit=5").status == 200);
  CHECK(request(http, "PUT", "/users/filler0%40example.com").status == 200);  // exists: a read

  // Space comes back (another process frees pages): writes succeed again,
  // without a restart, and no job is lost.
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE, /*busy_timeout_ms=*/5000);
    db.exec("DROP TABLE ballast");
  }
  auto again = request(http, "PUT", "/users/after%40example.com");
  CHECK(again.status == 201);
  CHECK(testing::eventually(
      [&] {
        return scalar(path, "SELECT count(*) FROM jobs WHERE state != 'completed'") == 0 &&
               scalar(path, "SELECT count(*) FROM mailbox") == users + 1;
      },
      std::chrono::seconds(20)));
  {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db,
                        "SELECT id, state, attempt, errors FROM jobs WHERE state != 'completed'");
    while (q.executeStep()) {
      MESSAGE(q.getColumn(0).getString()
              << " " << q.getColumn(1).getString() << " " << q.getColumn(2).getString() << " "
              << q.getColumn(3).getString());
    }
  }
}

TEST_CASE("refuses to start on a file that is not a database, untouched") {
  testing::TempDir dir;
  const std::string path = dir.file("notes.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "these are my notes, not a database\n";
  write_bytes(path, text);
  expect_refused(path, std::nullopt, "not a database");
}

TEST_CASE("refuses to start on a corrupted database, untouched") {
  testing::TempDir dir;
  const std::string path = dir.file("corrupt.db");
  make_database(dir, path);
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 4096);
  // Scribble over page 1's b-tree (the schema), keeping the 100-byte header.
  for (std::size_t i = 100; i < 600; ++i) bytes[i] = static_cast<char>(0xA5);
  write_bytes(path, bytes);
  expect_refused(path, std::nullopt, "malformed");
}

TEST_CASE("refuses to start on a database from a newer schema version, untouched") {
  testing::TempDir dir;
  const std::string path = dir.file("newer.db");
  {
    // As a newer binary might leave it: rollback-journal mode, version 999.
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE future (x INTEGER) STRICT; PRAGMA user_version = 999");
  }
  expect_refused(path, std::nullopt, "schema version 999");
}

TEST_CASE("refuses to start on a read-only database file, untouched") {
  testing::TempDir dir;
  const std::string path = dir.file("readonly.db");
  make_database(dir, path);
  // `nobody` owns the directory (so only the file's mode stops it) and the file, read-only.
  REQUIRE(::chown(dir.path().c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chown(path.c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chmod(path.c_str(), 0444) == 0);
  expect_refused(path, kNobody, "read-only");
}

TEST_CASE("refuses to start in a read-only directory, untouched") {
  testing::TempDir dir;
  const std::string sub = dir.file("ro");
  std::filesystem::create_directory(sub);
  const std::string path = sub + "/readonly-dir.db";
  make_database(dir, path);
  for (const char* suffix : {"-wal", "-shm", "-runner.lock"}) {
    std::filesystem::remove(path + suffix);
  }
  REQUIRE(::chown(sub.c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chown(path.c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chmod(sub.c_str(), 0555) == 0);
  expect_refused(path, kNobody, "cannot open database");
  ::chmod(sub.c_str(), 0755);
}

TEST_CASE("a write lock held by another process answers 409 busy, then recovers; no job lost") {
  testing::TempDir dir;
  app::Config cfg = testing::test_config(dir);
  cfg.busy_timeout_ms = 50;
  cfg.max_attempts = 3;
  cfg.job_lease_ms = 500;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  const auto& counters = server.app().db().counters();

  auto before = request(http, "PUT", "/users/before%40example.com");
  REQUIRE(before.status == 201);
  // Quiet before the lock is taken: its welcome job has run, so the probe
  // below can only meet the CLI's lock, not one of ours.
  REQUIRE(testing::eventually([&] {
    return request(http, "GET", "/mailbox?to=before%40example.com").json()["messages"].size() == 1;
  }));

  FILE* cli = ::popen(("sqlite3 " + cfg.db_path + " > /dev/null").c_str(), "w");
  REQUIRE(cli != nullptr);
  std::fputs("PRAGMA busy_timeout = 5000;\nBEGIN IMMEDIATE;\n", cli);
  std::fflush(cli);
  // Wait until the CLI really holds the lock.
  REQUIRE(testing::eventually([&] {
    SQLite::Database probe(cfg.db_path, SQLite::OPEN_READWRITE);
    try {
      probe.exec("BEGIN IMMEDIATE");
      probe.exec("ROLLBACK");
      return false;
    } catch (const SQLite::Exception&) {
      return true;
    }
  }));

  const auto exhausted_before = counters.busy_exhausted.load();
  auto busy = request(http, "PUT", "/users/during%40example.com");
  CHECK(busy.status == 409);
  CHECK(busy.header("Content-Type") == "application/problem+json");
  CHECK(busy.header("Retry-After") == "1");
  CHECK(busy.json()["type"] == "/problems/busy");
  CHECK(busy.json()["detail"] == "another request is being processed at this moment");
  CHECK(counters.busy_exhausted.load() > exhausted_before);

  // Reads are not blocked by a writer.
  CHECK(request(http, "GET", "/users/" + std::to_string(before.json()["id"].get<int>())).status ==
        200);
  CHECK(request(http, "GET", "/healthz").status == 200);

  std::fputs("ROLLBACK;\n.quit\n", cli);
  CHECK(::pclose(cli) == 0);

  auto after = request(http, "PUT", "/users/during%40example.com");
  CHECK(after.status == 201);
  // Both welcome jobs complete, each once.
  CHECK(testing::eventually(
      [&] {
        auto a = request(http, "GET", "/mailbox?to=before%40example.com").json();
        auto b = request(http, "GET", "/mailbox?to=during%40example.com").json();
        return a["messages"].size() == 1 && b["messages"].size() == 1;
      },
      std::chrono::seconds(20)));
  CHECK(scalar(cfg.db_path, "SELECT count(*) FROM users") == 2);
  CHECK(scalar(cfg.db_path, "SELECT count(*) FROM jobs WHERE state = 'completed'") == 2);
}
