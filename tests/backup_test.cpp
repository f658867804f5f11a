// Backups and restores of a live database, and the systemd unit that runs
// the server on an edge box.
//
// - Backups are taken by the real binary (`aftercommit backup`, its own
//   process) while a real server process writes, so SQLite's cross-process
//   locking is what is exercised. Copies are read back with SQLite directly:
//   integrity_check, and row-level consistency (each user has its audit row
//   and its welcome job, each message a completed job).
// - Restores run the binary too; "untouched" is checked by comparing bytes.
// - A full disk is a real one: a 512 KiB tmpfs mounted for the test (we run
//   as root in CI). Where mounting is not allowed, RLIMIT_FSIZE on the
//   backup process makes its writes fail instead (EFBIG rather than ENOSPC),
//   which the test says in its output.
// - The systemd unit is checked by `systemd-analyze verify` (systemd is a
//   test dependency; without it the test fails and says so).
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include "core/clock.h"
#include "db/database.h"
#include "maintenance/backup_schedule.h"
#include "tests/support/harness.h"

using testing::request;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::int64_t scalar(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement q(db, sql);
  REQUIRE(q.executeStep());
  return q.getColumn(0).getInt64();
}

std::int64_t scalar(const std::string& path, const std::string& sql) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return scalar(db, sql);
}

std::string integrity(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "PRAGMA integrity_check");
  std::string out;
  while (q.executeStep()) out += q.getColumn(0).getString() + "\n";
  return out;
}

std::set<std::string> dir_names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// Every row of the copy agrees with the others: one `created` audit row and
// one welcome job per user, no audit row or job without its user, and a
// message only for a completed job (apply and completion share a commit).
void check_consistent(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(scalar(db,
               "SELECT count(*) FROM users u WHERE (SELECT count(*) FROM user_actions a "
               "WHERE a.user_id = u.id AND a.action = 'created') != 1") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM users u WHERE (SELECT count(*) FROM jobs j "
               "WHERE j.kind = 'send_welcome_email' AND "
               "json_extract(j.args, '$.user_id') = u.id) != 1") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM user_actions a "
               "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.user_id)") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM jobs j WHERE j.kind = 'send_welcome_email' AND NOT EXISTS "
               "(SELECT 1 FROM users u WHERE u.id = json_extract(j.args, '$.user_id'))") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM mailbox m "
               "WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = m.job_id "
               "AND j.state = 'completed')") == 0);
}

// A database made by the server, `users` users and a `ballast_kib` KiB
// table, checkpointed by a graceful stop.
void make_database(const testing::TempDir& dir, const std::string& path, int users,
                   int ballast_kib) {
  {
    app::Config cfg = testing::test_config(dir);
    cfg.db_path = path;
    testing::InProcessServer server(cfg);
    auto http = server.client();
    for (int i = 0; i < users; ++i) {
      REQUIRE(request(http, "PUT", "/users/seed" + std::to_string(i) + "%40example.com").status ==
              201);
    }
  }
  if (ballast_kib > 0) {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("CREATE TABLE ballast (b BLOB NOT NULL)");
    db.exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < " +
            std::to_string(ballast_kib) + ") INSERT INTO ballast SELECT zeroblob(1000) FROM n");
  }
}

// Runs `argv` (argv[0] looked up in PATH), after `setup` in the child:
// {exit code, stdout + stderr}.
std::pair<int, std::string> run_command(std::vector<std::string> argv,
                                        const std::function<void()>& setup) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    setup();
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
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

std::pair<int, std::string> run_with(const std::vector<std::string>& args,
                                     const std::function<void()>& setup) {
  std::vector<std::string> argv = {AFTERCOMMIT_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, setup);
}

// A tmpfs of `bytes` mounted on `dir` for the scope; mounted() is false
// when the kernel refused (not root, no CAP_SYS_ADMIN).
class SmallDisk {
 public:
  SmallDisk(const fs::path& dir, std::size_t bytes) : dir_(dir) {
    fs::create_directories(dir);
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

// A webhook receiver on a free port: answers 200, counts deliveries by
// event id.
class Receiver {
 public:
  Receiver() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      const auto body = nlohmann::json::parse(req.body, nullptr, false);
      {
        std::lock_guard lock(mu_);
        events_.push_back(body.is_object() ? body.value("id", "") : "");
      }
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
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks"; }
  std::size_t total() {
    std::lock_guard lock(mu_);
    return events_.size();
  }
  std::size_t distinct() {
    std::lock_guard lock(mu_);
    return std::set<std::string>(events_.begin(), events_.end()).size();
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> events_;  // guarded by mu_
};

struct Ack {
  std::string email;
  std::chrono::steady_clock::time_point at;
};

}  // namespace

TEST_CASE(
    "a backup taken while 8 connections create users holds every user acknowledged before it "
    "started, each with its audit row and job") {
  testing::TempDir dir;
  const std::string db_path = dir.file("live.db");
  const std::string copy = dir.file("copy.db");
  // Big enough that a backup in 1-page steps with pauses takes a while.
  make_database(dir, db_path, 20, 1500);
  testing::ServerProcess server(db_path, {"--http-threads", "16"});

  std::mutex mu;
  std::vector<Ack> acks;  // guarded by mu
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      auto http = server.client();
      for (int i = 0; !stop; ++i) {
        const std::string local = "w" + std::to_string(t) + "-" + std::to_string(i);
        const std::string email = local + "@example.com";
        auto r = request(http, "PUT", "/users/" + local + "%40example.com");
        if (r.status != 201) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        acks.push_back({email, std::chrono::steady_clock::now()});
      }
    });
  }
  REQUIRE(testing::eventually([&] {
    std::lock_guard lock(mu);
    return acks.size() >= 100;
  }));
  const auto started = std::chrono::steady_clock::now();
  auto [rc, out] = testing::run_binary(
      {"backup", "--db", db_path, "--to", copy, "--step-pages", "4", "--step-pause", "2ms"});
  const auto finished = std::chrono::steady_clock::now();
  std::size_t during = 0;
  {
    std::lock_guard lock(mu);
    for (const Ack& a : acks) during += a.at > started && a.at < finished;
  }
  stop = true;
  for (auto& w : writers) w.join();
  CAPTURE(out);
  REQUIRE(rc == 0);
  CHECK(out.find("backup written to " + copy) != std::string::npos);
  CHECK(failures == 0);
  // Writers kept going while the copy held its snapshot.
  MESSAGE("users created while the backup ran: " << during);
  CHECK(during > 0);

  CHECK(integrity(copy) == "ok\n");
  CHECK(scalar(copy, "PRAGMA user_version") == db::latest_schema_version());
  // One self-contained file: rollback-journal header, nothing beside it.
  const std::string header = read_bytes(copy).substr(0, 20);
  CHECK(header[18] == 1);
  CHECK(header[19] == 1);
  CHECK_FALSE(fs::exists(copy + "-wal"));
  CHECK_FALSE(fs::exists(copy + "-journal"));

  std::set<std::string> in_copy;
  {
    SQLite::Database db(copy, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT email FROM users");
    while (q.executeStep()) in_copy.insert(q.getColumn(0).getString());
  }
  std::size_t before = 0;
  for (const Ack& a : acks) {
    if (a.at >= started) continue;
    ++before;
    CAPTURE(a.email);
    CHECK(in_copy.count(a.email) == 1);
  }
  CHECK(before >= 100);
  check_consistent(copy);
  // No temporary file left beside it.
  for (const std::string& name : dir_names(dir.path())) {
    CAPTURE(name);
    CHECK(name.find(".tmp-") == std::string::npos);
  }
}

TEST_CASE(
    "a restored backup serves, each job pending in it completes once, and an effect already in "
    "it is not applied twice") {
  testing::TempDir dir;
  const std::string db_path = dir.file("live.db");
  const std::string backup = dir.file("backup.db");
  const std::string restored = (dir.path() / "new" / "restored.db").string();
  fs::create_directories(dir.path() / "new");
  // Every user.created event is POSTed here (a deliver_webhook job each).
  Receiver receiver;
  const std::vector<std::string> hooks = {"--webhook-url", receiver.url(), "--webhook-secret",
                                          "s3cret"};

  // Five users whose effects all happened before the backup...
  {
    testing::ServerProcess server(db_path, hooks);
    auto http = server.client();
    for (int i = 0; i < 5; ++i)
      REQUIRE(request(http, "PUT", "/users/done" + std::to_string(i) + "%40example.com").status ==
              201);
    REQUIRE(testing::eventually([&] {
      return scalar(db_path, "SELECT count(*) FROM mailbox") == 5 && receiver.total() == 5;
    }));
    CHECK(server.terminate_and_wait() == 0);
  }
  // ...and five whose webhook jobs are still pending in it: each worker
  // sleeps before its job's first attempt. (More workers than jobs: in
  // per-request mode a full worker queue also holds back welcome emails.)
  {
    std::vector<std::string> args = hooks;
    // A short lease (renewed by heartbeats while the worker sleeps) so that
    // the restored copy's running jobs expire, and are rescued, quickly.
    for (const char* a : {"--test-job-delay", "600000", "--workers", "8", "--job-lease", "1s"})
      args.push_back(a);
    testing::ServerProcess server(db_path, args);
    auto http = server.client();
    for (int i = 0; i < 5; ++i)
      REQUIRE(
          request(http, "PUT", "/users/pending" + std::to_string(i) + "%40example.com").status ==
          201);
    // The welcome emails (no network part, no worker) are all delivered;
    // the webhooks wait.
    REQUIRE(testing::eventually([&] {
      return scalar(db_path, "SELECT count(*) FROM jobs WHERE state = 'running'") >= 1 &&
             scalar(db_path, "SELECT count(*) FROM mailbox") == 10;
    }));
    auto [rc, out] = testing::run_binary({"backup", "--db", db_path, "--to", backup});
    CAPTURE(out);
    REQUIRE(rc == 0);
    server.kill9();
  }
  CHECK(receiver.total() == 5);  // nothing of the second server was delivered
  CHECK(scalar(backup,
               "SELECT count(*) FROM jobs WHERE kind = 'deliver_webhook' "
               "AND state IN ('available', 'running', 'retryable')") == 5);
  CHECK(scalar(backup, "SELECT count(*) FROM jobs WHERE state = 'running'") >= 1);
  CHECK(scalar(backup, "SELECT count(*) FROM mailbox") == 10);
  const std::string backup_bytes = read_bytes(backup);

  auto [rc, out] = testing::run_binary({"restore", "--from", backup, "--db", restored});
  CAPTURE(out);
  REQUIRE(rc == 0);
  CHECK(out.find("restored from " + backup) != std::string::npos);
  CHECK(read_bytes(backup) == backup_bytes);  // the backup is only read
  CHECK(integrity(restored) == "ok\n");

  // The mailbox's unique job id is what makes a re-run harmless. Show it: put
  // one delivered welcome job back to `available`, as a restore would if its
  // effect and its completion had not been one commit.
  std::int64_t replayed_job = 0;
  std::int64_t message_id = 0;
  {
    SQLite::Database db(restored, SQLite::OPEN_READWRITE);
    SQLite::Statement q(db, "SELECT job_id, id FROM mailbox ORDER BY id LIMIT 1");
    REQUIRE(q.executeStep());
    replayed_job = q.getColumn(0).getInt64();
    message_id = q.getColumn(1).getInt64();
    db.exec("UPDATE jobs SET state = 'available', finished_at = NULL WHERE id = " +
            std::to_string(replayed_job));
  }

  // Jobs left `running` in the backup are rescued once their lease expires
  // (nothing proves their runner dead sooner): a short lease keeps this quick.
  std::vector<std::string> restored_args = hooks;
  for (const char* a : {"--job-lease", "1s"}) restored_args.push_back(a);
  testing::ServerProcess server(restored, restored_args);
  REQUIRE(testing::eventually([&] {
    return scalar(restored, "SELECT count(*) FROM jobs WHERE state = 'completed'") == 20;
  }));
  // Every event reached the receiver exactly once: the five pending ones
  // after the restore, the five delivered before it not again.
  CHECK(receiver.total() == 10);
  CHECK(receiver.distinct() == 10);
  CHECK(scalar(restored, "SELECT count(*) FROM mailbox") == 10);
  CHECK(scalar(restored, "SELECT count(DISTINCT job_id) FROM mailbox") == 10);
  CHECK(scalar(restored,
               "SELECT count(*) FROM mailbox WHERE job_id = " + std::to_string(replayed_job)) == 1);
  CHECK(scalar(restored, "SELECT id FROM mailbox WHERE job_id = " + std::to_string(replayed_job)) ==
        message_id);
  CHECK(scalar(restored, "SELECT attempt FROM jobs WHERE id = " + std::to_string(replayed_job)) ==
        2);
  check_consistent(restored);
  // And it serves.
  auto http = server.client();
  CHECK(request(http, "PUT", "/users/after%40example.com").status == 201);
}

TEST_CASE("restore is refused while a server or another connection has the database open") {
  testing::TempDir dir;
  const std::string db_path = dir.file("live.db");
  const std::string backup = dir.file("backup.db");
  make_database(dir, db_path, 3, 0);
  REQUIRE(testing::run_binary({"backup", "--db", db_path, "--to", backup}).first == 0);

  {
    testing::ServerProcess server(db_path);
    auto http = server.client();
    REQUIRE(request(http, "PUT", "/users/later%40example.com").status == 201);
    auto [rc, out] = testing::run_binary({"restore", "--from", backup, "--db", db_path});
    CAPTURE(out);
    CHECK(rc == 1);
    CHECK(out.find(db_path + " is open in another process") != std::string::npos);
    // Nothing changed under the server.
    CHECK(request(http, "PUT", "/users/later%40example.com").status == 200);
    CHECK(request(http, "PUT", "/users/later2%40example.com").status == 201);
    CHECK(server.terminate_and_wait() == 0);
  }
  CHECK(scalar(db_path, "SELECT count(*) FROM users") == 5);

  // No server, but a connection (this process) reading it in WAL mode.
  {
    SQLite::Database reader(db_path, SQLite::OPEN_READWRITE);
    reader.exec("PRAGMA journal_mode = WAL");
    CHECK(scalar(reader, "SELECT count(*) FROM users") == 5);
    auto [rc, out] = testing::run_binary({"restore", "--from", backup, "--db", db_path});
    CAPTURE(out);
    CHECK(rc == 1);
    CHECK(out.find("is open in another process") != std::string::npos);
    CHECK(scalar(reader, "SELECT count(*) FROM users") == 5);
  }
  // Once alone, it goes through.
  auto [rc, out] = testing::run_binary({"restore", "--from", backup, "--db", db_path});
  CAPTURE(out);
  CHECK(rc == 0);
  CHECK(scalar(db_path, "SELECT count(*) FROM users") == 3);
}

TEST_CASE(
    "a corrupt, foreign or too new backup is refused, and neither it nor the database changes") {
  testing::TempDir dir;
  const std::string db_path = dir.file("live.db");
  const std::string good = dir.file("good.db");
  make_database(dir, db_path, 50, 64);
  REQUIRE(testing::run_binary({"backup", "--db", db_path, "--to", good}).first == 0);
  const std::string good_bytes = read_bytes(good);
  REQUIRE(good_bytes.size() > 8 * 4096);

  struct Bad {
    const char* name;
    std::string bytes;
    const char* says;
  };
  std::vector<Bad> bad;
  {
    std::string b = good_bytes;  // pages 3 to 8 overwritten
    for (std::size_t i = 2 * 4096; i < 8 * 4096; ++i) b[i] = static_cast<char>(0xA5);
    bad.push_back({"corrupt.db", b, "integrity_check"});
  }
  bad.push_back({"truncated.db", good_bytes.substr(0, good_bytes.size() / 2), "malformed"});
  bad.push_back({"notes.txt", std::string(10000, 'x'), "not a readable SQLite database"});
  {
    write_bytes(dir.file("newer.db"), good_bytes);
    SQLite::Database db(dir.file("newer.db"), SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = " + std::to_string(db::latest_schema_version() + 1));
  }
  bad.push_back({"newer.db", read_bytes(dir.file("newer.db")), "newer than this binary"});

  const std::string db_bytes = read_bytes(db_path);
  for (const Bad& b : bad) {
    CAPTURE(b.name);
    const std::string path = dir.file(b.name);
    write_bytes(path, b.bytes);
    const std::set<std::string> names = dir_names(dir.path());
    auto [rc, out] = testing::run_binary({"restore", "--from", path, "--db", db_path});
    CAPTURE(out);
    CHECK(rc == 1);
    CHECK(out.rfind("aftercommit: ", 0) == 0);
    CHECK(out.find(b.says) != std::string::npos);
    CHECK(read_bytes(path) == b.bytes);
    CHECK(read_bytes(db_path) == db_bytes);
    // Nothing left behind.
    CHECK(dir_names(dir.path()) == names);
  }
  // Nor does a backup onto the database itself, or a restore of it onto itself.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"backup", "--db", db_path, "--to", db_path},
        std::vector<std::string>{"restore", "--from", db_path, "--db", db_path}}) {
    auto [rc, out] = testing::run_binary(args);
    CAPTURE(out);
    CHECK(rc == 1);
    CHECK(out.find("are the same file") != std::string::npos);
    CHECK(read_bytes(db_path) == db_bytes);
  }
  // The good one still restores, and the file keeps the replaced one's mode.
  REQUIRE(::chmod(db_path.c_str(), 0640) == 0);
  auto [rc, out] = testing::run_binary({"restore", "--from", good, "--db", db_path});
  CAPTURE(out);
  CHECK(rc == 0);
  CHECK((fs::status(db_path).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
}

TEST_CASE("a full disk during a backup leaves no file under the final name") {
  testing::TempDir dir;
  const std::string db_path = dir.file("live.db");
  make_database(dir, db_path, 20, 2048);  // about 2 MiB: four times the small disk
  testing::ServerProcess server(db_path);
  auto http = server.client();

  const fs::path small = dir.path() / "small";
  SmallDisk disk(small, 512 * 1024);
  std::function<void()> limit = [] {};
  if (!disk.mounted()) {
    // No mount allowed here: the backup process gets a 512 KiB file size
    // limit instead (its writes fail with EFBIG rather than ENOSPC).
    MESSAGE("tmpfs mount refused (" << disk.error() << "): using RLIMIT_FSIZE instead");
    limit = [] {
      ::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{512 * 1024, 512 * 1024};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    };
  }
  const std::string fresh = (small / "backup.db").string();
  auto [rc, out] = run_with({"backup", "--db", db_path, "--to", fresh}, limit);
  CAPTURE(out);
  CHECK(rc == 1);
  if (disk.mounted()) CHECK(out.find("full") != std::string::npos);
  CHECK_FALSE(fs::exists(fresh));
  CHECK(dir_names(small).empty());  // no temporary file either

  // An older backup under the final name stays as it was.
  const std::string older = (small / "older.db").string();
  write_bytes(older, "an older backup");
  auto [rc2, out2] = run_with({"backup", "--db", db_path, "--to", older}, limit);
  CAPTURE(out2);
  CHECK(rc2 == 1);
  CHECK(read_bytes(older) == "an older backup");
  CHECK(dir_names(small) == std::set<std::string>{"older.db"});

  // The server never noticed.
  CHECK(request(http, "PUT", "/users/still%40example.com").status == 201);
}

TEST_CASE(
    "scheduled backups are named in UTC, pruned to --backup-keep, and a failing one is counted "
    "while the server goes on") {
  testing::TempDir dir;
  const fs::path backups = dir.path() / "backups";
  core::ManualClock clock(1'764'464'523'456);  // 2025-11-30T01:02:03.456Z
  app::Config cfg = testing::test_config(dir);
  cfg.backup_dir = backups.string();
  cfg.backup_every_ms = 3'600'000;  // the loop never fires here; the test calls run_once
  cfg.backup_keep = 2;
  testing::InProcessServer server(cfg, &clock);
  auto http = server.client();
  REQUIRE(server.app().backups() != nullptr);
  write_bytes((backups / "notes.txt").string(), "not a backup");
  write_bytes((backups / "aftercommit-manual.db").string(), "taken by hand");

  std::vector<std::string> written;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(request(http, "PUT", "/users/s" + std::to_string(i) + "%40example.com").status == 201);
    auto path = server.app().backups()->run_once();
    REQUIRE(path);
    written.push_back(*path);
    clock.advance(3'600'000);
  }
  CHECK(fs::path(written[0]).filename() == "aftercommit-20251130T010203.456Z.db");
  CHECK(fs::path(written[3]).filename() == "aftercommit-20251130T040203.456Z.db");
  CHECK(dir_names(backups) == std::set<std::string>{"aftercommit-20251130T030203.456Z.db",
                                                    "aftercommit-20251130T040203.456Z.db",
                                                    "aftercommit-manual.db", "notes.txt"});
  CHECK(integrity(written[3]) == "ok\n");
  CHECK(scalar(written[3], "SELECT count(*) FROM users") == 4);

  auto metric = [&](const std::string& series) {
    const std::string body = request(http, "GET", "/metrics").body;
    std::smatch m;
    REQUIRE(std::regex_search(body, m, std::regex(series + R"( ([0-9.e+]+))")));
    return std::stod(m[1].str());
  };
  const double failed_before = metric(R"(aftercommit_backups_total\{outcome="failed"\})");
  const double ok_before = metric(R"(aftercommit_backups_total\{outcome="ok"\})");
  CHECK(metric("aftercommit_backup_last_success_timestamp_seconds") > 1.7e9);

  // The directory disappears (an unmounted disk): the backup fails, is
  // counted, and the server serves on.
  fs::rename(backups, dir.path() / "gone");
  auto failed = server.app().backups()->run_once();
  CHECK_FALSE(failed);
  CHECK(metric(R"(aftercommit_backups_total\{outcome="failed"\})") == failed_before + 1);
  CHECK(metric(R"(aftercommit_backups_total\{outcome="ok"\})") == ok_before);
  CHECK(request(http, "PUT", "/users/on%40example.com").status == 201);
  fs::rename(dir.path() / "gone", backups);
  CHECK(server.app().backups()->run_once());
}

TEST_CASE("serve --backup-every runs backups on its own and keeps the newest --backup-keep") {
  testing::TempDir dir;
  const std::string db_path = dir.file("live.db");
  const fs::path backups = dir.path() / "backups";
  testing::ServerProcess server(
      db_path, {"--backup-dir", backups.string(), "--backup-every", "200ms", "--backup-keep", "2"});
  auto http = server.client();
  REQUIRE(request(http, "PUT", "/users/sched%40example.com").status == 201);
  REQUIRE(testing::eventually(
      [&] {
        const std::string body = request(http, "GET", "/metrics").body;
        std::smatch m;
        return std::regex_search(
                   body, m, std::regex(R"(aftercommit_backups_total\{outcome="ok"\} (\d+))")) &&
               std::stoi(m[1].str()) >= 4;
      },
      std::chrono::seconds(30)));
  CHECK(server.terminate_and_wait() == 0);
  const std::set<std::string> names = dir_names(backups);
  CHECK(names.size() == 2);
  for (const std::string& name : names) {
    CAPTURE(name);
    CHECK(std::regex_match(name, std::regex(R"(aftercommit-\d{8}T\d{6}\.\d{3}Z\.db)")));
    CHECK(integrity((backups / name).string()) == "ok\n");
    CHECK(scalar((backups / name).string(), "SELECT count(*) FROM users") == 1);
  }
  auto [rc, out] = testing::run_binary(
      {"serve", "--db", db_path, "--backup-dir", backups.string(), "--backup-every", "soon"});
  CHECK(rc == 2);
  CHECK(out.find("--backup-every") != std::string::npos);
}

TEST_CASE("the systemd unit passes systemd-analyze verify and has the hardening it documents") {
  const std::string unit_path = std::string(AFTERCOMMIT_SOURCE_DIR) + "/deploy/aftercommit.service";
  const std::string unit = read_bytes(unit_path);
  REQUIRE(!unit.empty());
  for (const char* line :
       {"\nUser=aftercommit\n", "\nStateDirectory=aftercommit\n", "\nNoNewPrivileges=yes\n",
        "\nProtectSystem=strict\n", "\nReadWritePaths=/var/lib/aftercommit\n", "\nPrivateTmp=yes\n",
        "\nKillSignal=SIGTERM\n", "\nExecReload=/bin/kill -HUP $MAINPID\n",
        "\nEnvironment=AFTERCOMMIT_BACKUP_DIR=/var/lib/aftercommit/backups\n"}) {
    CAPTURE(line);
    CHECK(unit.find(line) != std::string::npos);
  }
  // The stop timeout outlasts the server's own shutdown timeout.
  std::smatch m;
  REQUIRE(std::regex_search(unit, m, std::regex(R"(\nTimeoutStopSec=(\d+)\n)")));
  const int stop_s = std::stoi(m[1].str());
  REQUIRE(std::regex_search(unit, m,
                            std::regex(R"(\nEnvironment=AFTERCOMMIT_SHUTDOWN_TIMEOUT=(\d+)\n)")));
  CHECK(stop_s * 1000 > std::stoi(m[1].str()) + 1000);
  // Every variable the unit sets is one the binary reads.
  auto [help_rc, help] = testing::run_binary({"serve", "--help"});
  REQUIRE(help_rc == 0);
  std::regex env_line(R"(\nEnvironment=(AFTERCOMMIT_[A-Z_]+)=)");
  int vars = 0;
  for (std::sregex_iterator it(unit.begin(), unit.end(), env_line), end; it != end; ++it) {
    CAPTURE((*it)[1].str());
    CHECK(help.find("(Env:" + (*it)[1].str() + ")") != std::string::npos);
    ++vars;
  }
  CHECK(vars >= 5);

  // systemd-analyze checks that ExecStart's binary exists: point the copy
  // at the one just built, and change nothing else. The path is quoted, as
  // systemd reads an unquoted one up to its first space (a checkout under
  // "/tmp/with space/" would otherwise name "/tmp/with").
  const bool have_analyze = ::access("/usr/bin/systemd-analyze", X_OK) == 0 ||
                            ::access("/bin/systemd-analyze", X_OK) == 0;
  if (!have_analyze) {
    FAIL("systemd-analyze is not installed (apt-get install systemd): the unit cannot be verified");
  }
  testing::TempDir dir;
  const std::string copy = dir.file("aftercommit.service");
  write_bytes(copy, std::regex_replace(unit, std::regex("/usr/local/bin/aftercommit"),
                                       "\"" + std::string(AFTERCOMMIT_BINARY) + "\""));
  auto [rc, verify_out] = run_command({"systemd-analyze", "verify", copy}, [] {});
  CAPTURE(verify_out);
  CHECK(rc == 0);
  CHECK(verify_out.empty());  // warnings count too

  // The user it runs as comes from deploy/aftercommit.sysusers: created in
  // a scratch root by systemd-sysusers, never on this machine.
  const fs::path root = dir.path() / "root";
  fs::create_directories(root / "etc");
  auto [users_rc, users_out] =
      run_command({"systemd-sysusers", "--root=" + root.string(),
                   std::string(AFTERCOMMIT_SOURCE_DIR) + "/deploy/aftercommit.sysusers"},
                  [] {});
  CAPTURE(users_out);
  CHECK(users_rc == 0);
  CHECK(read_bytes((root / "etc" / "passwd").string()).find("aftercommit:x:") != std::string::npos);
}

TEST_CASE("backup and restore explain themselves in --help, with examples") {
  for (const char* cmd : {"backup", "restore"}) {
    CAPTURE(cmd);
    auto [rc, out] = testing::run_binary({cmd, "--help"});
    CAPTURE(out);
    CHECK(rc == 0);
    CHECK(out.find("Examples:") != std::string::npos);
    CHECK(out.find("AFTERCOMMIT_DB") != std::string::npos);
  }
  auto [rc, out] = testing::run_binary({"backup", "--db", "x.db"});
  CHECK(rc != 0);  // --to is required (CLI11 picks the code; issue19 unifies them)
  CHECK(out.find("--to") != std::string::npos);
}
