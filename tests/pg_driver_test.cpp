// The PostgreSQL driver's own promises (db/pg/driver.h), PostgreSQL only:
// an outage answers 503 and heals without a restart, a lock held by
// another node past lock_timeout is `busy` and retried, then 409 busy.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "db/database.h"
#include "db/leader.h"
#include "db/pg/driver.h"
#include "db/users.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

// A PostgreSQL server of the test's own (tests/pg.sh), so that it can be
// stopped without stopping the one every other suite uses.
class PrivateServer {
 public:
  explicit PrivateServer(const testing::TempDir& dir) : dir_(dir.file("pg")) {
    socket_ = run("start");
    while (!socket_.empty() && socket_.back() == '\n') socket_.pop_back();
    REQUIRE(!socket_.empty());
  }
  ~PrivateServer() { (void)run("stop"); }
  PrivateServer(const PrivateServer&) = delete;
  PrivateServer& operator=(const PrivateServer&) = delete;

  std::string url() const { return "postgresql:///postgres?host=" + socket_ + "&user=postgres"; }
  void halt() { (void)run("halt"); }
  void resume() { (void)run("resume"); }

 private:
  std::string run(const std::string& verb) {
    const std::string cmd =
        testing::shell_quote(std::string(AFTERCOMMIT_SOURCE_DIR) + "/tests/pg.sh") + " " + verb +
        " " + testing::shell_quote(dir_);
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[512];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      ::pclose(p);
    }
    return out;
  }
  std::string dir_;
  std::string socket_;
};

}  // namespace

TEST_CASE(
    "PostgreSQL down: writes, reads and /healthz answer 503, then it serves again without "
    "a restart") {
  testing::TempDir dir;
  PrivateServer pg(dir);
  auto config = testing::test_config(dir);
  config.db_path = pg.url();
  testing::InProcessServer server(config);
  auto http = server.client();
  auto created = request(http, "PUT", "/users/kept%40example.com");
  REQUIRE(created.status == 201);
  const std::string user = "/users/" + created.json()["id"].dump();

  pg.halt();
  auto write = request(http, "PUT", "/users/later%40example.com");
  CHECK(write.status == 503);
  CHECK(write.json()["type"] == "/problems/unavailable");
  CHECK(request(http, "GET", user).status == 503);
  CHECK(request(http, "GET", "/healthz").status == 503);

  pg.resume();
  CHECK(testing::eventually([&] { return request(http, "GET", "/healthz").status == 200; },
                            std::chrono::seconds(20)));
  CHECK(request(http, "GET", user).status == 200);  // the acknowledged write is there
  CHECK(request(http, "PUT", "/users/later%40example.com").status == 201);
}

TEST_CASE("a row another node holds past lock_timeout is busy, retried, then answered busy") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  o.pg.lock_timeout_ms = 100;
  o.max_attempts = 3;
  auto holder = std::move(db::Database::open(o).value());
  auto other = std::move(db::Database::open(o).value());
  REQUIRE(holder
              ->write([](db::Tx& tx) {
                (void)db::insert_user_if_absent(tx, "held@example.com", 1);
                return core::Status::ok();
              })
              .is_ok());
  std::promise<void> locked, release;
  auto holding = std::async(std::launch::async, [&] {
    return holder->write([&](db::Tx& tx) {
      tx.conn().exec("SELECT 1 FROM users WHERE email = 'held@example.com' FOR UPDATE");
      locked.set_value();
      release.get_future().wait();
      return core::Status::ok();
    });
  });
  locked.get_future().wait();
  int runs = 0;
  db::TxStats stats;
  core::Status st = other->write(
      [&](db::Tx& tx) {
        ++runs;
        tx.conn().exec("UPDATE users SET created_at = 2 WHERE email = 'held@example.com'");
        return core::Status::ok();
      },
      &stats);
  release.set_value();
  CHECK(holding.get().is_ok());
  CHECK(st.code() == core::Code::kBusy);
  CHECK(runs == 3);  // --max-attempts runs of the phase, each stopped by lock_timeout
  CHECK(other->counters().busy_retries.load() == 2);
  // Once the row is free the same write goes through.
  CHECK(other
            ->write([](db::Tx& tx) {
              tx.conn().exec("UPDATE users SET created_at = 2 WHERE email = 'held@example.com'");
              return core::Status::ok();
            })
            .is_ok());
}

TEST_CASE("nodes opening one fresh database at once all start, and it is migrated once") {
  // Each round, four processes' worth of Database::open race on an empty
  // database: each reads the version (none), then checks and migrates under
  // the advisory lock while another may be committing the schema. A node
  // once refused such a database as "not an aftercommit database": its
  // transaction had begun before its peer's commit and still saw the
  // migrations table as missing (db/pg/driver.h, "Schema").
  for (int round = 0; round < 8; ++round) {
    CAPTURE(round);
    testing::TempDir dir;
    db::Options o;
    db::set_target(o, testing::test_db(dir));
    std::vector<std::future<core::Status>> opening;
    for (int node = 0; node < 4; ++node) {
      opening.push_back(std::async(std::launch::async, [&o] {
        auto opened = db::Database::open(o);
        return opened ? core::Status::ok() : opened.status();
      }));
    }
    for (auto& f : opening) {
      const core::Status st = f.get();
      CHECK_MESSAGE(st.is_ok(), st.to_string());
    }
    CHECK(testing::query_int(o.pg.url, "SELECT count(*) FROM schema_migrations") == 1);
  }
}

TEST_CASE(
    "one PostgreSQL leader at a time; resigning hands over at once, a silent leader's lease "
    "lapses") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  REQUIRE(db::Database::open(o).is_ok());  // migrated: the lease table exists
  db::pg::Options pg = o.pg;
  pg.leader_ttl_ms = 400;
  auto a_driver = db::pg::make_driver(pg);
  auto b_driver = db::pg::make_driver(pg);
  auto a = std::move(a_driver->leader_lock().value());
  auto b = std::move(b_driver->leader_lock().value());
  CHECK(a->held());
  CHECK_FALSE(b->held());
  a->resign();
  CHECK(b->held());  // no wait: the lease was given up
  CHECK_FALSE(a->held());
  // b goes silent (as a node killed by kill -9): its lease lapses, a takes over.
  CHECK(testing::eventually([&] { return a->held(); }, std::chrono::seconds(5)));
  CHECK(testing::query_int(o.pg.url, "SELECT term FROM leadership") == 3);
}
