// Unclaimed jobs: jobs whose whole effect is an apply in this database are
// never claimed. One transaction runs a batch of them, each inside its own
// nested savepoint, so a job that fails (by returning an error or by breaking
// a constraint) rolls back only itself and has its failure recorded, while
// the others complete. In group commit mode the writer runs them in the
// transaction right after the COMMIT that staged them (the follow-up).
#include <doctest/doctest.h>

#include "db/database.h"
#include "db/jobs.h"
#include "db/mailbox.h"
#include "db/users.h"
#include "jobs/handler.h"
#include "jobs/runner.h"
#include "maintenance/rescuer.h"

#include <thread>
#include "tests/support/harness.h"

namespace {

struct Fixture {
  testing::TempDir dir;
  core::ManualClock clock{1'700'000'000'000};
  std::unique_ptr<db::Database> db;
  jobs::Registry registry;

  Fixture() {
    db::Options o;
    db::set_target(o, testing::test_db(dir, "batch.db"));
    db = std::move(db::Database::open(o).value());
    // Delivers one message, then completes.
    registry.add(
        "deliver",
        jobs::Handler{
            nullptr, [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
              return db::deliver_message(tx, {"email", "batch@example.com", "hi", "", job.id}, now);
            }});
    // Writes, then refuses: its write must be rolled back.
    registry.add("refuse",
                 jobs::Handler{nullptr, [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
                                 (void)db::deliver_message(
                                     tx, {"email", "refused@example.com", "no", "", job.id}, now);
                                 return core::Status::unavailable("downstream said no");
                               }});
    // Breaks a foreign key (no user 999999): SQLite throws inside the apply.
    registry.add("violate",
                 jobs::Handler{nullptr, [](const jobs::Job&, db::Tx& tx, core::Millis now) {
                                 db::insert_user_action(tx, 999999, "created", now);
                                 return core::Status::ok();
                               }});
  }

  void stage(const std::string& kind) {
    REQUIRE(db->write([&](db::Tx& tx) {
                db::NewJob job;
                job.kind = kind;
                (void)db::stage_job(tx, job, clock.now_ms());
                return core::Status::ok();
              }).is_ok());
  }

  std::vector<db::JobRow> jobs_in(const std::string& state) {
    std::vector<db::JobRow> out;
    db::JobFilter f;
    f.state = state;
    f.limit = 1000;
    REQUIRE(db->read([&](db::Conn& c) {
                out = db::list_jobs(c, f);
                return core::Status::ok();
              }).is_ok());
    return out;
  }

  std::size_t messages_to(const std::string& to) {
    std::size_t n = 0;
    REQUIRE(db->read([&](db::Conn& c) {
                n = db::list_messages(c, to).size();
                return core::Status::ok();
              }).is_ok());
    return n;
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "runs a batch of apply-only jobs in one transaction, unclaimed") {
  for (int i = 0; i < 20; ++i) stage("deliver");
  jobs::RunnerOptions options;
  options.batch = 64;
  jobs::Runner runner(*db, registry, clock, options);
  const auto writes_before = db->counters().write_tx.load();
  CHECK(runner.run_once().value() == 20);
  // No claim: one transaction runs and completes them all.
  CHECK(db->counters().write_tx.load() - writes_before == 1);
  CHECK(jobs_in("running").empty());
  const auto done = jobs_in("completed");
  REQUIRE(done.size() == 20);
  for (const auto& j : done) {
    CHECK(j.attempt == 1);
    CHECK(j.attempted_at == std::optional<core::Millis>(clock.now_ms()));
    CHECK(j.finished_at == std::optional<core::Millis>(clock.now_ms()));
    CHECK_FALSE(j.lease_until.has_value());
  }
  CHECK(messages_to("batch@example.com") == 20);
}

TEST_CASE_FIXTURE(Fixture,
                  "jobs of a kind with nothing to apply complete in the same transaction, beside "
                  "failing ones") {
  // No apply and no perform: completed together in one statement, with no
  // savepoint each; a failing job of another kind in the batch rolls back
  // only itself.
  registry.add("nothing", jobs::Handler{nullptr, nullptr});
  for (int i = 0; i < 30; ++i) stage(i % 10 == 5 ? "refuse" : (i % 2 == 0 ? "nothing" : "deliver"));
  jobs::RunnerOptions options;
  options.batch = 64;
  jobs::Runner runner(*db, registry, clock, options);
  const auto writes_before = db->counters().write_tx.load();
  CHECK(runner.run_once().value() == 30);
  CHECK(db->counters().write_tx.load() - writes_before == 1);
  const auto done = jobs_in("completed");
  CHECK(done.size() == 27);
  int nothing = 0;
  for (const auto& j : done) {
    CHECK(j.attempt == 1);
    CHECK(j.attempted_at == std::optional<core::Millis>(clock.now_ms()));
    CHECK(j.finished_at == std::optional<core::Millis>(clock.now_ms()));
    if (j.kind == "nothing") ++nothing;
  }
  CHECK(nothing == 15);
  const auto failed = jobs_in("retryable");
  REQUIRE(failed.size() == 3);
  for (const auto& j : failed) CHECK(j.kind == "refuse");
  CHECK(messages_to("batch@example.com") == 12);
  CHECK(messages_to("refused@example.com") == 0);
  // Nothing is left to run, and a second pass completes nothing twice.
  CHECK(runner.run_once().value() == 0);
  CHECK(jobs_in("completed").size() == 27);
}

TEST_CASE_FIXTURE(Fixture, "a batch as large as the limit leaves the rest to the next pass") {
  for (int i = 0; i < 5; ++i) stage("deliver");
  jobs::RunnerOptions options;
  options.complete_batch = 3;
  jobs::Runner runner(*db, registry, clock, options);
  CHECK(runner.run_once().value() == 3);
  CHECK(jobs_in("available").size() == 2);
  CHECK(runner.run_once().value() == 2);
  CHECK(jobs_in("completed").size() == 5);
}

TEST_CASE_FIXTURE(Fixture,
                  "group commit: the writer runs a staged job right after its commit, until stop") {
  jobs::RunnerOptions options;
  options.poll_interval_ms = 3'600'000;  // the producer never polls during this test
  jobs::Runner runner(*db, registry, clock, options);
  runner.start();
  // Let the producer's first pass (nothing to do) finish; nothing notifies it
  // afterwards (this database has no commit listener).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto writes_before = db->counters().write_tx.load();
  const auto commits_before = db->counters().commits.load();
  stage("deliver");
  REQUIRE(testing::eventually([&] { return jobs_in("completed").size() == 1; }));
  CHECK(messages_to("batch@example.com") == 1);
  // Only the staging write() was asked for; the job ran in the writer's own
  // follow-up transaction, the one after the staging commit.
  CHECK(db->counters().write_tx.load() - writes_before == 1);
  CHECK(db->counters().commits.load() - commits_before == 2);

  runner.stop();
  stage("deliver");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(jobs_in("available").size() == 1);  // no follow-up after stop()
}

TEST_CASE_FIXTURE(Fixture, "a failing job in a batch rolls back only itself and records why") {
  for (const char* kind : {"deliver", "refuse", "deliver", "violate", "deliver"}) stage(kind);
  jobs::Runner runner(*db, registry, clock, jobs::RunnerOptions{});
  CHECK(runner.run_once().value() == 5);

  CHECK(jobs_in("completed").size() == 3);
  CHECK(messages_to("batch@example.com") == 3);
  CHECK(messages_to("refused@example.com") == 0);  // its write was undone
  auto retryable = jobs_in("retryable");
  REQUIRE(retryable.size() == 2);
  for (const auto& j : retryable) {
    CAPTURE(j.kind);
    CHECK(j.attempt == 1);
    auto errors = nlohmann::json::parse(j.errors_json);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["attempt"] == 1);
    CHECK_FALSE(errors[0]["message"].get<std::string>().empty());
    CHECK(j.run_at > clock.now_ms());  // backoff
  }
}

TEST_CASE_FIXTURE(Fixture, "jobs rescued after their lease are claimed again and complete once") {
  stage("deliver");
  stage("deliver");
  jobs::RunnerOptions options;
  options.lease_ms = 1000;
  jobs::Runner runner(*db, registry, clock, options);
  // A runner that died after claiming both: its claims expire and are rescued.
  std::vector<db::JobRow> claimed;
  REQUIRE(db->write([&](db::Tx& tx) {
              claimed = db::claim_jobs(tx, 10, clock.now_ms(), clock.now_ms() + 1000);
              return core::Status::ok();
            }).is_ok());
  REQUIRE(claimed.size() == 2);
  clock.advance(5000);
  CHECK(maintenance::Rescuer(*db, clock).run_once().value() == 2);
  // Both are retryable again; a fresh pass claims attempt 2 and completes them.
  CHECK(runner.run_once().value() == 2);
  CHECK(jobs_in("completed").size() == 2);
  CHECK(messages_to("batch@example.com") == 2);
  for (const auto& j : jobs_in("completed")) CHECK(j.attempt == 2);
}
