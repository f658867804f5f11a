// A job queue on a temporary database with a ManualClock: what the jobs
// suites share. Time moves only when a test moves it, and the runner's passes
// (run_once, heartbeat_once), the rescuer's and the cleaner's are called by
// the test, so nothing waits on a sleep.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "db/database.h"
#include "db/jobs.h"
#include "db/mailbox.h"
#include "jobs/handler.h"
#include "jobs/runner.h"
#include "maintenance/cleaner.h"
#include "maintenance/rescuer.h"
#include "tests/support/harness.h"

namespace testing {

inline constexpr core::Millis kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

inline std::unique_ptr<db::Database> open_test_db(const TempDir& dir) {
  db::Options o;
  db::set_target(o, testing::test_db(dir, "jobs.db"));
  auto opened = db::Database::open(o);
  if (!opened) throw std::runtime_error(opened.status().to_string());
  return std::move(*opened);
}

struct JobsFixture {
  TempDir dir;
  core::ManualClock clock{kT0};
  std::unique_ptr<db::Database> db = open_test_db(dir);
  jobs::Registry registry;
  jobs::RunnerOptions options = [] {
    jobs::RunnerOptions o;
    o.lease_ms = 30000;
    o.backoff_base_ms = 1000;
    o.backoff_cap_ms = 60000;
    return o;
  }();
  std::unique_ptr<jobs::Runner> runner_;
  maintenance::Rescuer rescuer{*db, clock};

  // The runner, built on first use so that tests register kinds and set
  // options first; the kinds' defaults are saved then, as App does.
  jobs::Runner& runner() {
    if (!runner_) {
      REQUIRE(jobs::save_kind_defaults(*db, registry).is_ok());
      runner_ = std::make_unique<jobs::Runner>(*db, registry, clock, options);
    }
    return *runner_;
  }

  std::optional<std::int64_t> try_stage(const db::NewJob& job) {
    std::optional<std::int64_t> id;
    REQUIRE(db->write([&](db::Tx& tx) {
                id = db::stage_job(tx, job, clock.now_ms());
                return core::Status::ok();
              }).is_ok());
    return id;
  }
  std::int64_t stage(const db::NewJob& job) {
    auto id = try_stage(job);
    REQUIRE(id.has_value());
    return *id;
  }
  std::int64_t stage(const std::string& kind, nlohmann::json args = nlohmann::json::object()) {
    db::NewJob j;
    j.kind = kind;
    j.args_json = args.dump();
    return stage(j);
  }

  db::JobRow job(std::int64_t id) {
    std::optional<db::JobRow> row;
    REQUIRE(db->read([&](db::Conn& c) {
                row = db::find_job(c, id);
                return core::Status::ok();
              }).is_ok());
    REQUIRE(row.has_value());
    return *row;
  }
  bool exists(std::int64_t id) {
    bool found = false;
    REQUIRE(db->read([&](db::Conn& c) {
                found = db::find_job(c, id).has_value();
                return core::Status::ok();
              }).is_ok());
    return found;
  }
  // For handlers: no doctest assertion inside, so it is safe on any thread.
  std::string job_state(std::int64_t id) {
    std::string state;
    (void)db->read([&](db::Conn& c) {
      if (auto row = db::find_job(c, id)) state = row->state;
      return core::Status::ok();
    });
    return state;
  }
  nlohmann::json errors(std::int64_t id) { return nlohmann::json::parse(job(id).errors_json); }

  std::vector<db::JobRow> claim(int limit) {
    std::vector<db::JobRow> out;
    REQUIRE(db->write([&](db::Tx& tx) {
                out = db::claim_jobs(tx, limit, clock.now_ms(), clock.now_ms() + options.lease_ms);
                return core::Status::ok();
              }).is_ok());
    return out;
  }

  int run_once() {
    auto ran = runner().run_once();
    REQUIRE(ran.is_ok());
    return *ran;
  }

  std::vector<db::MessageRow> mailbox(const std::string& to) {
    std::vector<db::MessageRow> out;
    REQUIRE(db->read([&](db::Conn& c) {
                out = db::list_messages(c, to);
                return core::Status::ok();
              }).is_ok());
    return out;
  }
};

// An `apply` that delivers one mailbox message to `to` for the job: an effect
// in this database, so it must happen exactly once.
inline core::Status deliver_test_message(const jobs::Job& job, db::Tx& tx, core::Millis now,
                                         const std::string& to) {
  return db::deliver_message(tx, {"email", to, "test", "job " + std::to_string(job.id), job.id},
                             now);
}

}  // namespace testing
