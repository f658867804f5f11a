// db/: migrations, start-up refusals, and the one write path.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "db/conn.h"
#include "db/database.h"
#include "db/idempotency.h"
#include "db/jobs.h"
#include "db/orders.h"
#include "db/users.h"
#include "tests/support/harness.h"

namespace {

db::Options options_for(const std::string& path, int migrate_to = -1) {
  db::Options o;
  db::set_target(o, path);
  o.migrate_to = migrate_to;
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("SQLite: migrates an empty file to the latest schema version" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  auto db = db::Database::open(options_for(dir.file("new.db")));
  REQUIRE(db.is_ok());
  CHECK((*db)->schema_version().value() == db::latest_schema_version());
}

TEST_CASE("SQLite: upgrades a file at the previous version in place and keeps its rows" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("old.db");
  const int previous = db::latest_schema_version() - 1;
  {
    auto old = db::Database::open(options_for(path, previous));
    REQUIRE(old.is_ok());
    CHECK((*old)->schema_version().value() == previous);
    if (previous >= 1) {  // users exist from version 1 on
      REQUIRE((*old)
                  ->write([](db::Tx& tx) {
                    (void)db::insert_user_if_absent(tx, "kept@example.com", 1000);
                    return core::Status::ok();
                  })
                  .is_ok());
    }
  }
  auto upgraded = db::Database::open(options_for(path));
  REQUIRE(upgraded.is_ok());
  CHECK((*upgraded)->schema_version().value() == db::latest_schema_version());
  if (previous >= 1) {
    std::optional<db::UserRow> kept;
    REQUIRE((*upgraded)
                ->read([&](db::Conn& c) {
                  kept = db::find_user_by_email(c, "kept@example.com");
                  return core::Status::ok();
                })
                .is_ok());
    CHECK(kept.has_value());
  }
}

TEST_CASE("SQLite: migration 6 names the workflow of every existing key from its path" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("keys-v5.db");
  const std::string fp(64, 'f');
  {
    auto old = db::Database::open(options_for(path, 5));
    REQUIRE(old.is_ok());
  }
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "INSERT INTO orders (email, phone, total_cents, payment_token, created_at, updated_at) "
        "VALUES ('b@example.com', '+15550100200', 100, 'tok_visa', 1, 1)");
    raw.exec(
        "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, "
        "response_status, response_content_type, response_headers, response_body, created_at, "
        "last_run_at) VALUES "
        "('anonymous', 'user', 'PUT', '/users/x', '" +
        fp +
        "', 'finished', 201, 'application/json', '[]', '{}', 1, 1), "
        "('anonymous', 'paid', 'POST', '/checkout', '" +
        fp +
        "', 'finished', 201, 'application/json', '[]', '{}', 1, 1), "
        "('anonymous', 'approve', 'POST', '/products/1/approve', '" +
        fp + "', 'finished', 409, 'application/problem+json', '[]', '{}', 1, 1)");
    raw.exec(
        "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, "
        "order_id, created_at, last_run_at, gateway_key) VALUES ('anonymous', 'resume-me', "
        "'POST', '/checkout', '" +
        fp + "', 'order_created', 1, 1, 1, 'resume-me')");
  }
  auto upgraded = db::Database::open(options_for(path));
  REQUIRE(upgraded.is_ok());
  CHECK((*upgraded)->schema_version().value() >= 6);
  auto workflow_of = [&](const std::string& key) {
    std::optional<db::IdempotencyKeyRow> row;
    REQUIRE((*upgraded)
                ->read([&](db::Conn& c) {
                  row = db::find_idempotency_key(c, "anonymous", key);
                  return core::Status::ok();
                })
                .is_ok());
    REQUIRE(row);
    return row->workflow;
  };
  CHECK(workflow_of("user") == "single_phase");
  CHECK(workflow_of("approve") == "single_phase");
  CHECK(workflow_of("paid") == "checkout");
  CHECK(workflow_of("resume-me") == "checkout");
  // The completer's query finds the unfinished checkout by its workflow.
  std::vector<db::IdempotencyKeyRow> abandoned;
  REQUIRE((*upgraded)
              ->read([&](db::Conn& c) {
                abandoned = db::list_abandoned_keys(c, "checkout", 2, 2, 10);
                return core::Status::ok();
              })
              .is_ok());
  REQUIRE(abandoned.size() == 1);
  CHECK(abandoned[0].key == "resume-me");
}

TEST_CASE("SQLite: refuses a file from a newer schema and leaves it untouched" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("future.db");
  {
    auto db = db::Database::open(options_for(path));
    REQUIRE(db.is_ok());
  }
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = " + std::to_string(db::latest_schema_version() + 1));
  }
  const std::string before = read_file(path);
  auto refused = db::Database::open(options_for(path));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("newer than this binary") != std::string::npos);
  CHECK(read_file(path) == before);
}

TEST_CASE("SQLite: refuses a file that is not a database and leaves it untouched" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("notes.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "this is not a database, it is a text file\n";
  }
  const std::string before = read_file(path);
  auto refused = db::Database::open(options_for(path));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("not a database") != std::string::npos);
  CHECK(read_file(path) == before);
}

namespace {

std::int64_t scalar(SQLite::Database& db, const std::string& sql) {
  return db.execAndGet(sql).getInt64();
}

std::set<std::string> index_names(SQLite::Database& db) {
  std::set<std::string> out;
  SQLite::Statement q(db,
                      "SELECT name FROM sqlite_schema WHERE type IN ('index','trigger') "
                      "AND sql IS NOT NULL");
  while (q.executeStep()) out.insert(q.getColumn(0).getString());
  return out;
}

}  // namespace

TEST_CASE("SQLite: upgrading a version 4 file that reused deleted ids: no id comes back after it" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("v4.db");
  REQUIRE(db::Database::open(options_for(path, 4)).is_ok());
  const std::string fp(64, 'f');
  std::set<std::string> indexes_before;
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA foreign_keys = ON");
    // Five jobs ran; messages name jobs 1, 2 and 5; the cleaner deleted all.
    for (int i = 0; i < 5; ++i) {
      raw.exec("INSERT INTO jobs (kind, args, run_at, created_at) VALUES ('w', '{}', 1, 1)");
    }
    for (int job : {1, 2, 5}) {
      raw.exec(
          "INSERT INTO mailbox (channel, recipient, subject, body, job_id, created_at) "
          "VALUES ('email', 'a" +
          std::to_string(job) + "@example.com', 'Welcome', 'hi', " + std::to_string(job) + ", 1)");
    }
    raw.exec("DELETE FROM jobs");
    // Before: the next job takes id 1 again, the id message 1 names.
    raw.exec("INSERT INTO jobs (kind, args, run_at, created_at) VALUES ('w', '{}', 1, 1)");
    CHECK(raw.getLastInsertRowid() == 1);
    // A job naming order 7 (orders 1-2 exist): no order may become 7.
    raw.exec(
        "INSERT INTO jobs (kind, args, run_at, created_at) VALUES "
        "('send_sms', '{\"order_id\": 7, \"phone\": \"+15550100200\"}', 1, 1)");
    for (int i = 0; i < 2; ++i) {
      raw.exec(
          "INSERT INTO orders (email, phone, total_cents, payment_token, created_at, "
          "updated_at) VALUES ('b@example.com', '+15550100200', 100, 'tok_visa', 1, 1)");
    }
    // Keys: a finished one reaped and its id reused; two unfinished checkouts.
    const std::string finished =
        "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, "
        "response_status, response_content_type, response_headers, response_body, created_at, "
        "last_run_at) VALUES ('anonymous', ?1, 'PUT', '/users/x', '" +
        fp + "', 'finished', 201, 'application/json', '[]', '{}', 1, 1)";
    for (const char* key : {"done", "done-again"}) {
      SQLite::Statement q(raw, finished);
      q.bind(1, key);
      q.exec();
      if (std::string(key) == "done") raw.exec("DELETE FROM idempotency_keys");
    }
    CHECK(raw.getLastInsertRowid() == 1);
    raw.exec(
        "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, "
        "recovery_point, order_id, created_at, last_run_at) VALUES "
        "('anonymous', 'resume-me', 'POST', '/checkout', '" +
        fp +
        "', 'order_created', 1, 1, 1), "
        "('bearer:abc', 'resume-me', 'POST', '/checkout', '" +
        fp + "', 'order_created', 2, 1, 1)");
    indexes_before = index_names(raw);
  }

  auto upgraded = db::Database::open(options_for(path));
  REQUIRE(upgraded.is_ok());
  db::Database& db = **upgraded;
  std::int64_t job = 0, next_job = 0, order = 0;
  std::optional<db::IdempotencyKeyRow> key;
  REQUIRE(db.write([&](db::Tx& tx) {
              db::NewJob j;
              j.kind = "w";
              job = db::stage_job(tx, j, 1).value();
              tx.conn().exec("DELETE FROM jobs WHERE id = " + std::to_string(job));
              next_job = db::stage_job(tx, j, 1).value();
              db::NewOrder o{"b@example.com", "+15550100200", 100, "tok_visa", {}};
              order = db::insert_order(tx, o, 1);
              key = db::insert_started_key(tx, {"anonymous", "new", "POST", "/checkout", fp}, 1);
              return core::Status::ok();
            }).is_ok());
  CHECK(job == 6);  // above message 5's job_id, not max(id) + 1 = 3
  CHECK(next_job == 7);
  CHECK(order == 8);
  CHECK(key->id == 4);
  REQUIRE(key->gateway_key);
  // The client's key, then our own per-operation part (db/idempotency.cpp).
  CHECK(key->gateway_key->rfind("new ac_", 0) == 0);
  CHECK(key->gateway_key->size() == std::string("new ac_").size() + 32);

  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  for (const char* table : {"jobs", "idempotency_keys", "orders"}) {
    CAPTURE(table);
    CHECK(raw.execAndGet(std::string("SELECT sql FROM sqlite_schema WHERE name = '") + table + "'")
              .getString()
              .find("AUTOINCREMENT") != std::string::npos);
  }
  // Every row kept; every index and trigger kept (one replaced by design).
  CHECK(scalar(raw, "SELECT count(*) FROM jobs") == 3);
  CHECK(scalar(raw, "SELECT count(*) FROM mailbox") == 3);
  CHECK(scalar(raw, "SELECT count(*) FROM orders") == 3);
  std::set<std::string> indexes_after = index_names(raw);
  for (const std::string& name : indexes_before) {
    CAPTURE(name);
    if (name != "idempotency_keys_by_age") CHECK(indexes_after.count(name) == 1);
  }
  CHECK(indexes_after.count("orders_one_order_per_charge") == 1);
  CHECK(raw.execAndGet("PRAGMA integrity_check").getString() == "ok");
  CHECK_FALSE(SQLite::Statement(raw, "PRAGMA foreign_key_check").executeStep());
  // Unfinished keys keep the gateway key they may have charged under.
  CHECK(raw.execAndGet("SELECT gateway_key FROM idempotency_keys WHERE scope = 'anonymous' "
                       "AND key = 'resume-me'")
            .getString() == "resume-me");
  CHECK(raw.execAndGet("SELECT gateway_key FROM idempotency_keys WHERE scope = 'bearer:abc'")
            .getString() == "bearer:abc resume-me");
  CHECK(raw.execAndGet("SELECT gateway_key IS NULL FROM idempotency_keys WHERE key = 'done-again'")
            .getInt() == 1);
  // Foreign keys are on again: an item of no order is refused.
  core::Status orphan = db.write([](db::Tx& tx) {
    tx.conn().exec(
        "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) "
        "VALUES (999, 'x', 1, 1)");
    return core::Status::ok();
  });
  CHECK(orphan.code() == core::Code::kConflict);
}

TEST_CASE(
    "SQLite: upgrading to version 7 takes the fake gateway's table out of the production schema" *
    doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("v6.db");
  REQUIRE(db::Database::open(options_for(path, 6)).is_ok());
  const char* has_table = "SELECT count(*) FROM sqlite_schema WHERE name = 'gateway_charges'";
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    REQUIRE(raw.execAndGet(has_table).getInt() == 1);
    raw.exec(
        "INSERT INTO gateway_charges (charge_id, idempotency_key, amount_cents, token, status, "
        "created_at) VALUES ('ch_1', 'k', 100, 'tok_visa', 'succeeded', 1)");
  }
  REQUIRE(db::Database::open(options_for(path)).is_ok());
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet(has_table).getInt() == 0);
  CHECK(raw.execAndGet("PRAGMA user_version").getInt() == db::latest_schema_version());
}

TEST_CASE(
    "SQLite: a failed migration leaves the file byte for byte as it was, journal mode included" *
    doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  const std::string path = dir.file("half.db");
  REQUIRE(db::Database::open(options_for(path, 3)).is_ok());
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    REQUIRE(raw.execAndGet("PRAGMA journal_mode = DELETE").getString() == "delete");
    // Migration 4 creates job_kinds: this file already has one.
    raw.exec("CREATE TABLE job_kinds (kind TEXT)");
  }
  REQUIRE_FALSE(std::filesystem::exists(path + "-wal"));
  const std::string before = read_file(path);
  auto refused = db::Database::open(options_for(path));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("job_kinds already exists") != std::string::npos);
  CHECK(read_file(path) == before);
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST_CASE("SQLite: refuses another program's database and leaves it byte for byte as it was" *
          doctest::test_suite("sqlite_only")) {
  testing::TempDir dir;
  for (const char* schema : {"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
                             "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"}) {
    CAPTURE(schema);
    const std::string path =
        dir.file(std::string("other-") + std::to_string(std::hash<std::string>{}(schema)) + ".db");
    {
      SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      raw.exec(schema);
    }
    const std::string before = read_file(path);
    auto refused = db::Database::open(options_for(path));
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().message().find("not an aftercommit database") != std::string::npos);
    CHECK(read_file(path) == before);
    CHECK_FALSE(std::filesystem::exists(path + "-wal"));
  }
  // A file at one of our versions that lacks that version's tables is not ours either.
  const std::string versioned = dir.file("versioned.db");
  {
    SQLite::Database raw(versioned, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); PRAGMA user_version = 3");
  }
  const std::string before = read_file(versioned);
  auto refused = db::Database::open(options_for(versioned));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("no table users") != std::string::npos);
  CHECK(read_file(versioned) == before);
}

TEST_CASE("servers opening one fresh database at once all start, at the latest version") {
  // Each round, sixteen openers race on a new database: each reads the
  // schema version (none yet), checks the database is ours and migrates,
  // while another may be committing the schema. Their starts are spread
  // over the first one's migration, so that some read while it commits.
  // An opener once read the version before a peer's COMMIT and the list of
  // tables after it, and refused the database as "not an aftercommit
  // database" (SQLite: three nodes of multi_node_test started at once;
  // PostgreSQL: pg_driver_test).
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    testing::TempDir dir;
    const db::Options o = options_for(testing::test_db(dir, "fresh.db"));
    std::vector<std::future<core::Status>> opening;
    for (int opener = 0; opener < 16; ++opener) {
      opening.push_back(std::async(std::launch::async, [&o, opener] {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 * opener));
        auto opened = db::Database::open(o);
        return opened ? core::Status::ok() : opened.status();
      }));
    }
    for (auto& f : opening) {
      const core::Status st = f.get();
      CHECK_MESSAGE(st.is_ok(), st.to_string());
    }
    auto db = db::Database::open(o);
    REQUIRE(db.is_ok());
    CHECK((*db)->schema_version().value() == db::latest_schema_version());
  }
}

TEST_CASE("rolls back everything a failing phase wrote") {
  testing::TempDir dir;
  auto db = std::move(db::Database::open(options_for(testing::test_db(dir, "rb.db"))).value());
  core::Status st = db->write([](db::Tx& tx) {
    auto user = db::insert_user_if_absent(tx, "gone@example.com", 1);
    db::insert_user_action(tx, user->id, "created", 1);
    db::NewJob job;
    job.kind = "send_welcome_email";
    (void)db::stage_job(tx, job, 1);
    return core::Status::conflict("changed my mind");
  });
  CHECK(st.code() == core::Code::kConflict);
  std::int64_t users = -1;
  bool runnable = true;
  REQUIRE(db->read([&](db::Conn& c) {
              users = db::count_users(c);
              runnable = db::any_runnable_job(c, 10);
              return core::Status::ok();
            }).is_ok());
  CHECK(users == 0);
  CHECK_FALSE(runnable);
}

TEST_CASE("translates a constraint violation inside a phase and writes nothing") {
  testing::TempDir dir;
  auto db = std::move(db::Database::open(options_for(testing::test_db(dir, "c.db"))).value());
  core::Status st = db->write([](db::Tx& tx) {
    (void)db::insert_user_if_absent(tx, "ok@example.com", 1);
    db::insert_user_action(tx, 999, "created", 1);  // no user 999: foreign key
    return core::Status::ok();
  });
  CHECK(st.code() == core::Code::kConflict);
  std::int64_t users = -1;
  REQUIRE(db->read([&](db::Conn& c) {
              users = db::count_users(c);
              return core::Status::ok();
            }).is_ok());
  CHECK(users == 0);
}

namespace {

// A group-commit database; users() counts what committed.
struct GroupFixture {
  testing::TempDir dir;
  std::unique_ptr<db::Database> db;
  GroupFixture() {
    db::Options o;
    db::set_target(o, testing::test_db(dir, "group.db"));
    o.commit_mode = db::CommitMode::kGroup;
    db = std::move(db::Database::open(o).value());
  }
  std::int64_t users() {
    std::int64_t n = -1;
    REQUIRE(db->read([&](db::Conn& c) {
                n = db::count_users(c);
                return core::Status::ok();
              }).is_ok());
    return n;
  }
};

}  // namespace

TEST_CASE_FIXTURE(GroupFixture, "group commit: a failing phase rolls back only itself") {
  // Hold the writer inside a first phase so that the others queue up and
  // share the next transaction.
  std::promise<void> entered, release;
  std::thread blocker([&] {
    REQUIRE(db->write([&](db::Tx& tx) {
                (void)db::insert_user_if_absent(tx, "first@example.com", 1);
                entered.set_value();
                release.get_future().wait();
                return core::Status::ok();
              }).is_ok());
  });
  entered.get_future().wait();
  const auto base = db->counters().write_tx.load();  // open() already wrote (migrations)
  constexpr int kWriters = 20;
  std::vector<core::Status> results(kWriters);
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      results[i] = db->write([&](db::Tx& tx) {
        (void)db::insert_user_if_absent(tx, "w" + std::to_string(i) + "@example.com", 1);
        return i % 3 == 0 ? core::Status::conflict("refused after writing") : core::Status::ok();
      });
    });
  }
  CHECK(testing::eventually([&] { return db->counters().write_tx.load() == base + kWriters; }));
  release.set_value();
  blocker.join();
  for (auto& w : writers) w.join();

  int refused = 0;
  for (int i = 0; i < kWriters; ++i) {
    CAPTURE(i);
    if (i % 3 == 0) {
      CHECK(results[i].code() == core::Code::kConflict);
      ++refused;
    } else {
      CHECK(results[i].is_ok());
    }
  }
  CHECK(users() == 1 + kWriters - refused);
  // The queued writers really shared transactions.
  CHECK(db->counters().batched_phases.load() > db->counters().batches.load());
}

TEST_CASE_FIXTURE(GroupFixture,
                  "group commit: phases that lost their transaction to another's fault run again") {
  std::promise<void> entered, release;
  std::thread blocker([&] {
    (void)db->write([&](db::Tx&) {
      entered.set_value();
      release.get_future().wait();
      return core::Status::ok();
    });
  });
  entered.get_future().wait();
  const auto base = db->counters().write_tx.load();
  // Queue: good, good, saboteur (ends the whole transaction, as SQLite does on
  // some I/O errors), good. The goods must all land; the saboteur must not.
  std::vector<std::thread> writers;
  std::vector<core::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    writers.emplace_back([&, i] {
      results[i] = db->write([&](db::Tx& tx) {
        (void)db::insert_user_if_absent(tx, "r" + std::to_string(i) + "@example.com", 1);
        if (i == 2) {
          tx.conn().exec("ROLLBACK");  // fault injection: the transaction is gone
          return core::Status::internal("injected: transaction aborted");
        }
        return core::Status::ok();
      });
    });
    // Queue them in order so the saboteur comes after two good phases.
    REQUIRE(testing::eventually([&] { return db->counters().write_tx.load() == base + 1u + i; }));
  }
  release.set_value();
  blocker.join();
  for (auto& w : writers) w.join();
  CHECK(results[0].is_ok());
  CHECK(results[1].is_ok());
  CHECK(results[2].code() == core::Code::kInternal);
  CHECK(results[3].is_ok());
  CHECK(users() == 3);
  std::optional<db::UserRow> saboteur;
  REQUIRE(db->read([&](db::Conn& c) {
              saboteur = db::find_user_by_email(c, "r2@example.com");
              return core::Status::ok();
            }).is_ok());
  CHECK_FALSE(saboteur.has_value());
}
