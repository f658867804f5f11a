// The invariant the project is named after, tested directly: the runner acts
// only on jobs whose staging transaction committed. A transaction held open
// hides its job; a rollback leaves no job; a commit runs the job exactly once.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "db/database.h"
#include "db/jobs.h"
#include "jobs/handler.h"
#include "jobs/runner.h"
#include "tests/support/harness.h"

namespace {

struct Fixture {
  testing::TempDir dir;
  core::ManualClock clock{1'700'000'000'000};
  std::unique_ptr<db::Database> db;
  jobs::Registry registry;
  std::atomic<int> effects{0};
  std::unique_ptr<jobs::Runner> runner;

  Fixture() {
    db::Options o;
    db::set_target(o, testing::test_db(dir, "v.db"));
    db = std::move(db::Database::open(o).value());
    registry.add("count", jobs::Handler{nullptr, [this](const jobs::Job&, db::Tx&, core::Millis) {
                                          effects.fetch_add(1);
                                          return core::Status::ok();
                                        }});
    runner = std::make_unique<jobs::Runner>(*db, registry, clock, jobs::RunnerOptions{});
  }

  // Stages one job in a transaction on another thread and holds it open until
  // `decide` is fulfilled: true commits, false rolls back.
  std::thread hold_open(std::promise<void>& staged, std::future<bool> decide) {
    return std::thread([this, &staged, decide = std::move(decide)]() mutable {
      core::Status st = db->write([&](db::Tx& tx) {
        db::NewJob job;
        job.kind = "count";
        (void)db::stage_job(tx, job, clock.now_ms());
        staged.set_value();
        return decide.get() ? core::Status::ok() : core::Status::conflict("rolled back on purpose");
      });
      (void)st;
    });
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "does not see a job whose transaction is still open") {
  std::promise<void> staged;
  std::promise<bool> decide;
  std::thread writer = hold_open(staged, decide.get_future());
  staged.get_future().wait();

  auto ran = runner->run_once();
  REQUIRE(ran.is_ok());
  CHECK(*ran == 0);
  CHECK(effects == 0);

  decide.set_value(true);
  writer.join();
}

TEST_CASE_FIXTURE(Fixture, "never runs a job whose transaction rolled back") {
  std::promise<void> staged;
  std::promise<bool> decide;
  std::thread writer = hold_open(staged, decide.get_future());
  staged.get_future().wait();
  decide.set_value(false);
  writer.join();

  auto ran = runner->run_once();
  REQUIRE(ran.is_ok());
  CHECK(*ran == 0);
  CHECK(effects == 0);
  auto jobs = std::vector<db::JobRow>{};
  REQUIRE(db->read([&](db::Conn& c) {
              jobs = db::list_jobs(c, {});
              return core::Status::ok();
            }).is_ok());
  CHECK(jobs.empty());
}

TEST_CASE_FIXTURE(Fixture, "runs a committed job exactly once") {
  std::promise<void> staged;
  std::promise<bool> decide;
  std::thread writer = hold_open(staged, decide.get_future());
  staged.get_future().wait();
  CHECK(runner->run_once().value() == 0);  // still open
  decide.set_value(true);
  writer.join();

  CHECK(runner->run_once().value() == 1);
  CHECK(effects == 1);
  CHECK(runner->run_once().value() == 0);
  CHECK(effects == 1);

  std::vector<db::JobRow> jobs;
  REQUIRE(db->read([&](db::Conn& c) {
              jobs = db::list_jobs(c, {});
              return core::Status::ok();
            }).is_ok());
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == "completed");
  CHECK(jobs[0].attempt == 1);
}

TEST_CASE_FIXTURE(Fixture, "the commit of a staging transaction wakes the runner") {
  std::atomic<int> woken{0};
  db->set_commit_listener([&](const db::CommitInfo& info) {
    if (info.wake) woken.fetch_add(1);
  });
  REQUIRE(db->write([&](db::Tx& tx) {
              db::NewJob job;
              job.kind = "count";
              (void)db::stage_job(tx, job, clock.now_ms());
              return core::Status::ok();
            }).is_ok());
  CHECK(woken == 1);
  REQUIRE(db->write([](db::Tx&) { return core::Status::ok(); }).is_ok());
  CHECK(woken == 1);  // a commit that staged nothing does not wake it
}
