// Storage faults: a full disk, files the server must refuse to start on, and
// another process holding SQLite's write lock.
//
// - Disk full is simulated with PRAGMA max_page_count on the writer (hidden
//   flag --max-db-pages, Config::max_db_pages) over a file padded with a
//   "ballast" table; dropping the ballast from another connection gives the
//   space back without a restart, as freeing disk space would.
// - Start-up refusals run the real binary and compare the file's bytes before
//   and after: one line on stderr, a non-zero exit, the file untouched. Where
//   permissions matter they run as `nobody` when the suite runs as root (root
//   ignores file modes), from a copy of the binary in the case's own
//   world-traversable directory; as any other user they run as that user.
// - The write lock is held by the real `sqlite3` CLI in BEGIN IMMEDIATE.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

// Who runs the permission cases. Root ignores file modes, so as root they
// run as `nobody`; any other user is already subject to them and runs them
// as itself (no switch, no privilege needed).
struct Runner {
  std::optional<uid_t> switch_to;  // nullopt: this process's own user
};

constexpr uid_t kNobody = 65534;

Runner permission_runner() {
  return ::geteuid() == 0 ? Runner{kNobody} : Runner{std::nullopt};
}

// The first directory on the way to `path` that "others" may not traverse,
// or "" when every one of them lets them through.
std::string untraversable_ancestor(const std::filesystem::path& path) {
  for (auto p = std::filesystem::absolute(path);; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return p.string();
    if (p == p.root_path()) return "";
  }
}

// What another user needs to run the binary, in a place that user can reach:
// a world-traversable directory (the case's own temporary directory, opened
// to others) holding a copy of the binary. The build tree may sit under a
// directory only its owner can enter (a clone in /root, in `mktemp -d`).
std::string reachable_binary(const testing::TempDir& dir, const std::string& source,
                             const Runner& runner) {
  if (!runner.switch_to) return source;
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  const std::string blocked = untraversable_ancestor(dir.path());
  REQUIRE_MESSAGE(blocked.empty(), "uid " << *runner.switch_to << " cannot traverse " << blocked
                                          << " (on the way to the test directory); point TMPDIR "
                                             "at a directory every user may enter");
  const std::string copy = dir.file("aftercommit-bin");
  std::filesystem::copy_file(source, copy, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::permissions(copy, std::filesystem::perms(0755));
  return copy;
}

// How a run ended: the program's exit code and output, or why it never ran.
struct Run {
  int code = -1;
  std::string out;
  std::string launch_error;  // set when setuid or exec failed: the program never ran
};

// Runs `binary` with `args` as `runner` to completion. A failure to switch
// user or to exec is reported through a close-on-exec pipe as its own
// message, so it cannot pass for (or be mistaken for) a refusal.
Run run_as(const std::string& binary, const Runner& runner, const std::vector<std::string>& args) {
  int out_fds[2];
  int err_fds[2];
  REQUIRE(::pipe(out_fds) == 0);
  REQUIRE(::pipe2(err_fds, O_CLOEXEC) == 0);
  std::vector<std::string> full = {binary};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fds[1], STDOUT_FILENO);
    ::dup2(out_fds[1], STDERR_FILENO);
    ::close(out_fds[0]);
    ::close(err_fds[0]);
    auto fail = [&](const char* what) {
      char msg[256];
      const int len = std::snprintf(msg, sizeof msg, "%s: %s", what, std::strerror(errno));
      if (len > 0) (void)!::write(err_fds[1], msg, static_cast<std::size_t>(len));
      ::_exit(127);
    };
    if (runner.switch_to) {
      if (::setgid(*runner.switch_to) != 0) fail("setgid");
      if (::setuid(*runner.switch_to) != 0) fail("setuid");
    }
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    fail(("exec " + full[0]).c_str());
  }
  ::close(out_fds[1]);
  ::close(err_fds[1]);
  Run run;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_fds[0], buf, sizeof buf)) > 0)
    run.out.append(buf, static_cast<std::size_t>(n));
  while ((n = ::read(err_fds[0], buf, sizeof buf)) > 0) {
    run.launch_error.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_fds[0]);
  ::close(err_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// The refusal contract: non-zero exit (not a signal), exactly one line that
// names the program, and the file's bytes unchanged.
void expect_refused(const std::string& binary, const std::string& db_path, const Runner& runner,
                    const std::string& must_mention) {
  const std::string before = read_bytes(db_path);
  const Run run = run_as(binary, runner, {"serve", "--port", "0", "--db", db_path});
  REQUIRE_MESSAGE(run.launch_error.empty(), "the binary never ran: " << run.launch_error);
  CAPTURE(run.out);
  CHECK(run.code > 0);
  CHECK(run.out.rfind("aftercommit: ", 0) == 0);
  CHECK(run.out.find('\n') == run.out.size() - 1);  // one line
  CHECK(run.out.find(must_mention) != std::string::npos);
  CHECK(read_bytes(db_path) == before);
}

void expect_refused(const std::string& db_path, const std::string& must_mention) {
  expect_refused(AFTERCOMMIT_BINARY, db_path, Runner{}, must_mention);
}

// Gives the file (and, as root, its directory) to whoever runs the case.
void hand_over(const Runner& runner, const std::string& path) {
  if (runner.switch_to) REQUIRE(::chown(path.c_str(), *runner.switch_to, *runner.switch_to) == 0);
}

// The permission cases run the binary from a private build tree: a copy of it
// in a directory only this user may enter (mode 0700), as a clone in /root or
// in `mktemp -d` is. So they pass only if the run prepares what the other
// user needs instead of exec'ing the build tree in place.
class PrivateBuildTree {
 public:
  PrivateBuildTree() {
    const auto tree = dir_.path() / "private checkout";  // a space, as a user's path may have
    std::filesystem::create_directory(tree);
    std::filesystem::permissions(dir_.path(), std::filesystem::perms(0700));
    std::filesystem::permissions(tree, std::filesystem::perms(0700));
    binary_ = (tree / "aftercommit").string();
    std::filesystem::copy_file(AFTERCOMMIT_BINARY, binary_);
  }
  const std::string& binary() const { return binary_; }

 private:
  testing::TempDir dir_;
  std::string binary_;
};

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
  expect_refused(path, "not a database");
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
  expect_refused(path, "malformed");
}

TEST_CASE("refuses to start on a database from a newer schema version, untouched") {
  testing::TempDir dir;
  const std::string path = dir.file("newer.db");
  {
    // As a newer binary might leave it: rollback-journal mode, version 999.
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE future (x INTEGER) STRICT; PRAGMA user_version = 999");
  }
  expect_refused(path, "schema version 999");
}

TEST_CASE("refuses to start on a read-only database file, untouched") {
  PrivateBuildTree build;
  testing::TempDir dir;
  const Runner runner = permission_runner();
  const std::string binary = reachable_binary(dir, build.binary(), runner);
  const std::string path = dir.file("readonly.db");
  make_database(dir, path);
  // The runner owns the directory (so only the file's mode stops it) and the file, read-only.
  hand_over(runner, dir.path().string());
  hand_over(runner, path);
  REQUIRE(::chmod(path.c_str(), 0444) == 0);
  expect_refused(binary, path, runner, "read-only");
}

TEST_CASE("refuses to start in a read-only directory, untouched") {
  PrivateBuildTree build;
  testing::TempDir dir;
  const Runner runner = permission_runner();
  const std::string binary = reachable_binary(dir, build.binary(), runner);
  const std::string sub = dir.file("ro");
  std::filesystem::create_directory(sub);
  std::filesystem::permissions(sub, std::filesystem::perms(0755));
  const std::string path = sub + "/readonly-dir.db";
  make_database(dir, path);
  for (const char* suffix : {"-wal", "-shm", "-runner.lock"}) {
    std::filesystem::remove(path + suffix);
  }
  hand_over(runner, sub);
  hand_over(runner, path);
  REQUIRE(::chmod(sub.c_str(), 0555) == 0);
  expect_refused(binary, path, runner, "cannot open database");
  ::chmod(sub.c_str(), 0755);
}

TEST_CASE("a binary that cannot be run is reported as such, not as a refusal") {
  testing::TempDir dir;
  const Run run = run_as(dir.file("no-such-binary"), Runner{}, {"serve"});
  CHECK(run.launch_error.find("exec ") == 0);
  CHECK(run.launch_error.find("No such file or directory") != std::string::npos);
  CHECK(run.out.empty());
  if (::geteuid() == 0) {
    // What the old test did: `nobody` exec'ing a binary under a 0700 directory.
    PrivateBuildTree build;
    const Run blocked = run_as(build.binary(), Runner{kNobody}, {"--version"});
    CHECK(blocked.launch_error.find("Permission denied") != std::string::npos);
  }
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

  FILE* cli =
      ::popen(("sqlite3 " + testing::shell_quote(cfg.db_path) + " > /dev/null").c_str(), "w");
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
