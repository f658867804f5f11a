// db/: migrations, start-up refusals, and the one write path.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "db/conn.h"
#include "db/database.h"
#include "db/jobs.h"
#include "db/migrations.h"
#include "db/users.h"
#include "tests/support/harness.h"

namespace {

db::Options options_for(const std::string& path, int migrate_to = -1) {
  db::Options o;
  o.path = path;
  o.migrate_to = migrate_to;
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("migrates an empty file to the latest schema version") {
  testing::TempDir dir;
  auto db = db::Database::open(options_for(dir.file("new.db")));
  REQUIRE(db.is_ok());
  CHECK((*db)->schema_version().value() == db::latest_schema_version());
}

TEST_CASE("upgrades a file at the previous version in place and keeps its rows") {
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

TEST_CASE("refuses a file from a newer schema and leaves it untouched") {
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

TEST_CASE("refuses a file that is not a database and leaves it untouched") {
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

TEST_CASE("rolls back everything a failing phase wrote") {
  testing::TempDir dir;
  auto db = std::move(db::Database::open(options_for(dir.file("rb.db"))).value());
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
  auto db = std::move(db::Database::open(options_for(dir.file("c.db"))).value());
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
    o.path = dir.file("group.db");
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
