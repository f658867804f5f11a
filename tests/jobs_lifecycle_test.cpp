// The job lifecycle of jobs/job_state.h, arrow by arrow, on the db layer with
// a ManualClock: staging (kind defaults, unique keys, serial keys), claim
// order, complete/fail/heartbeat fenced by attempt, the rescuer, the API's
// retry and cancel (and the transitions they refuse, also over HTTP), the
// cleaner, and backoff.
#include <doctest/doctest.h>

#include "jobs/backoff.h"
#include "tests/support/jobs_fixture.h"

using testing::JobsFixture;
using testing::kT0;

namespace {

bool complete(JobsFixture& f, std::int64_t id, int attempt) {
  bool done = false;
  REQUIRE(f.db->write([&](db::Tx& tx) {
                done = db::complete_job(tx, id, attempt, f.clock.now_ms());
                return core::Status::ok();
              })
              .is_ok());
  return done;
}

bool fail(JobsFixture& f, std::int64_t id, int attempt, const std::string& message,
          core::Millis retry_at, bool discard) {
  bool done = false;
  REQUIRE(f.db->write([&](db::Tx& tx) {
                done = db::fail_job(tx, id, attempt, message, f.clock.now_ms(), retry_at, discard);
                return core::Status::ok();
              })
              .is_ok());
  return done;
}

std::optional<db::JobRow> api(JobsFixture& f, std::int64_t id, bool retry) {
  std::optional<db::JobRow> row;
  REQUIRE(f.db->write([&](db::Tx& tx) {
                row = retry ? db::retry_job(tx, id, f.clock.now_ms())
                            : db::cancel_job(tx, id, f.clock.now_ms());
                return core::Status::ok();
              })
              .is_ok());
  return row;
}

}  // namespace

TEST_CASE("backoff doubles per attempt within a jitter band and never exceeds the cap") {
  const jobs::Backoff b{1000, 60000};
  CHECK(b.delay_ms(1, 0.0) == 750);
  CHECK(b.delay_ms(1, 0.5) == 1000);
  CHECK(b.delay_ms(2, 0.5) == 2000);
  CHECK(b.delay_ms(3, 0.5) == 4000);
  CHECK(b.delay_ms(3, 0.0) == 3000);
  CHECK(b.delay_ms(3, 0.999) == 4998);
  CHECK(b.delay_ms(7, 0.5) == 60000);   // 64 s capped to 60 s
  CHECK(b.delay_ms(7, 0.0) == 45000);   // the jitter still spreads capped retries
  CHECK(b.delay_ms(7, 0.99) == 60000);  // ... but never above the cap
  CHECK(b.delay_ms(1000, 0.5) == 60000);
  for (int attempt = 1; attempt < 12; ++attempt) {
    const core::Millis d = b.jittered_delay_ms(attempt);
    CHECK(d >= b.delay_ms(attempt, 0.0));
    CHECK(d <= b.delay_ms(attempt, 1.0));
  }
}

TEST_CASE_FIXTURE(JobsFixture, "staging applies the kind's defaults unless the job sets its own") {
  registry.add("slow_kind", jobs::Handler{}, jobs::KindOptions{3, 5000});
  (void)runner();  // saves the kinds' defaults

  const auto by_kind = stage("slow_kind");
  CHECK(job(by_kind).state == "available");
  CHECK(job(by_kind).max_attempts == 3);
  CHECK(job(by_kind).timeout_ms == std::optional<core::Millis>(5000));
  CHECK(job(by_kind).run_at == kT0);
  CHECK(job(by_kind).attempt == 0);

  db::NewJob own;
  own.kind = "slow_kind";
  own.max_attempts = 9;
  own.timeout_ms = 100;
  const auto by_job = stage(own);
  CHECK(job(by_job).max_attempts == 9);
  CHECK(job(by_job).timeout_ms == std::optional<core::Millis>(100));

  const auto unknown = stage("unregistered_kind");
  CHECK(job(unknown).max_attempts == 5);
  CHECK_FALSE(job(unknown).timeout_ms.has_value());
}

TEST_CASE_FIXTURE(JobsFixture,
                  "claims by priority, then run_at, then id, and never before run_at") {
  db::NewJob later;
  later.kind = "k";
  later.run_at = kT0 + 10000;  // a scheduled job
  const auto scheduled = stage(later);
  const auto a = stage("k");
  const auto b = stage("k");
  db::NewJob urgent;
  urgent.kind = "k";
  urgent.priority = -1;
  const auto c = stage(urgent);
  db::NewJob lazy;
  lazy.kind = "k";
  lazy.priority = 5;
  const auto d = stage(lazy);

  auto claimed = claim(10);
  REQUIRE(claimed.size() == 4);
  CHECK(claimed[0].id == c);
  CHECK(claimed[1].id == a);
  CHECK(claimed[2].id == b);
  CHECK(claimed[3].id == d);
  CHECK(job(a).state == "running");
  CHECK(job(a).attempt == 1);
  CHECK(job(a).lease_until == std::optional<core::Millis>(kT0 + options.lease_ms));
  CHECK(job(scheduled).state == "available");

  clock.advance(9999);
  CHECK(claim(10).empty());
  clock.advance(1);
  auto now_due = claim(10);
  REQUIRE(now_due.size() == 1);
  CHECK(now_due[0].id == scheduled);
}

TEST_CASE_FIXTURE(JobsFixture, "claim takes at most the batch asked for") {
  for (int i = 0; i < 5; ++i) stage("k");
  CHECK(claim(2).size() == 2);
  CHECK(claim(2).size() == 2);
  CHECK(claim(2).size() == 1);
  CHECK(claim(2).empty());
}

TEST_CASE_FIXTURE(JobsFixture,
                  "running to completed, once, and only for the attempt that holds it") {
  const auto id = stage("k");
  REQUIRE(claim(1).size() == 1);
  CHECK_FALSE(complete(*this, id, 2));  // not the attempt that holds the claim
  CHECK(job(id).state == "running");
  clock.advance(5);
  CHECK(complete(*this, id, 1));
  CHECK(job(id).state == "completed");
  CHECK(job(id).finished_at == std::optional<core::Millis>(kT0 + 5));
  CHECK_FALSE(job(id).lease_until.has_value());
  CHECK_FALSE(complete(*this, id, 1));  // completed is final
  CHECK_FALSE(fail(*this, id, 1, "late", kT0, false));
  CHECK(job(id).state == "completed");
}

TEST_CASE_FIXTURE(JobsFixture, "running to retryable with the error appended, then to discarded") {
  db::NewJob twice;
  twice.kind = "k";
  twice.max_attempts = 2;
  const auto id = stage(twice);

  REQUIRE(claim(1).size() == 1);
  CHECK_FALSE(fail(*this, id, 2, "wrong attempt", kT0 + 1000, false));
  CHECK(fail(*this, id, 1, "boom 1", kT0 + 1000, false));
  auto row = job(id);
  CHECK(row.state == "retryable");
  CHECK(row.run_at == kT0 + 1000);
  CHECK_FALSE(row.finished_at.has_value());
  CHECK(errors(id) ==
        nlohmann::json::parse(R"([{"attempt": 1, "at": 1700000000000, "message": "boom 1"}])"));
  CHECK(claim(1).empty());  // not before its backoff

  clock.advance(1000);  // retryable -> running when run_at has come
  auto again = claim(1);
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempt == 2);
  CHECK(fail(*this, id, 2, "boom 2", kT0 + 5000, true));
  row = job(id);
  CHECK(row.state == "discarded");
  CHECK(row.finished_at == std::optional<core::Millis>(kT0 + 1000));
  CHECK(errors(id).size() == 2);
  CHECK(errors(id)[1]["message"] == "boom 2");
  CHECK(claim(1).empty());  // discarded is final for the runner
}

TEST_CASE_FIXTURE(JobsFixture, "a heartbeat extends the lease of the attempt that holds it only") {
  const auto id = stage("k");
  REQUIRE(claim(1).size() == 1);
  bool beat = false;
  REQUIRE(db->write([&](db::Tx& tx) {
              beat = db::heartbeat_job(tx, id, 1, kT0 + 99000);
              CHECK_FALSE(db::heartbeat_job(tx, id, 2, kT0 + 1));
              return core::Status::ok();
            }).is_ok());
  CHECK(beat);
  CHECK(job(id).lease_until == std::optional<core::Millis>(kT0 + 99000));
}

TEST_CASE_FIXTURE(JobsFixture, "release gives back an unstarted claim with its attempt undone") {
  const auto id = stage("k");
  REQUIRE(claim(1).size() == 1);
  REQUIRE(db->write([&](db::Tx& tx) {
              CHECK_FALSE(db::release_job(tx, id, 2));
              CHECK(db::release_job(tx, id, 1));
              return core::Status::ok();
            }).is_ok());
  CHECK(job(id).state == "available");
  CHECK(job(id).attempt == 0);
  CHECK_FALSE(job(id).lease_until.has_value());
}

TEST_CASE_FIXTURE(JobsFixture,
                  "the rescuer returns expired leases to retryable, or discarded at max_attempts") {
  db::NewJob once;
  once.kind = "k";
  once.max_attempts = 1;
  const auto last_try = stage(once);
  const auto retried = stage("k");
  REQUIRE(claim(2).size() == 2);
  clock.advance(10000);
  const auto fresh = stage("k");
  REQUIRE(claim(1).size() == 1);  // leased until kT0 + 40000

  const auto writes_before = db->counters().write_tx.load();
  auto none = rescuer.run_once();
  REQUIRE(none.is_ok());
  CHECK(*none == 0);
  CHECK(db->counters().write_tx.load() == writes_before);  // a read showed no work

  clock.set(kT0 + options.lease_ms);  // the first two leases end now: not yet expired
  CHECK(*rescuer.run_once() == 0);
  clock.advance(1);
  auto rescued = rescuer.run_once();
  REQUIRE(rescued.is_ok());
  CHECK(*rescued == 2);

  CHECK(job(retried).state == "retryable");
  CHECK(job(retried).run_at == clock.now_ms());
  CHECK_FALSE(job(retried).lease_until.has_value());
  CHECK(errors(retried).size() == 1);
  CHECK(errors(retried)[0]["attempt"] == 1);
  CHECK(errors(retried)[0]["message"].get<std::string>().find("lease expired") !=
        std::string::npos);
  CHECK(job(last_try).state == "discarded");
  CHECK(job(last_try).finished_at.has_value());
  CHECK(errors(last_try).size() == 1);
  CHECK(job(fresh).state == "running");

  // The rescued attempt is fenced out: its late completion changes nothing.
  CHECK_FALSE(complete(*this, retried, 1));
  CHECK(job(retried).state == "retryable");
}

TEST_CASE_FIXTURE(JobsFixture, "cancel moves available and retryable jobs only") {
  const auto available = stage("k");
  const auto retryable = stage("k");
  const auto running = stage("k");
  const auto completed = stage("k");
  const auto discarded = stage("k");
  // Claim the last four (the first stays available).
  REQUIRE(api(*this, available, false).has_value());  // available -> cancelled
  CHECK(job(available).state == "cancelled");
  CHECK(job(available).finished_at == std::optional<core::Millis>(kT0));
  REQUIRE(claim(4).size() == 4);
  REQUIRE(fail(*this, retryable, 1, "x", kT0 + 1000, false));
  REQUIRE(complete(*this, completed, 1));
  REQUIRE(fail(*this, discarded, 1, "x", kT0, true));

  auto cancelled = api(*this, retryable, false);  // retryable -> cancelled
  REQUIRE(cancelled.has_value());
  CHECK(cancelled->state == "cancelled");
  CHECK_FALSE(api(*this, running, false).has_value());
  CHECK_FALSE(api(*this, completed, false).has_value());
  CHECK_FALSE(api(*this, discarded, false).has_value());
  CHECK_FALSE(api(*this, available, false).has_value());  // already cancelled
  CHECK(job(running).state == "running");
  CHECK(job(completed).state == "completed");
  CHECK(job(discarded).state == "discarded");
  CHECK_FALSE(api(*this, 424242, false).has_value());
}

TEST_CASE_FIXTURE(JobsFixture,
                  "retry moves discarded and cancelled jobs only, allowing one more attempt") {
  db::NewJob once;
  once.kind = "k";
  once.max_attempts = 1;
  const auto discarded = stage(once);
  const auto cancelled = stage("k");
  const auto completed = stage("k");
  const auto running = stage("k");
  REQUIRE(api(*this, cancelled, false).has_value());
  const auto retryable = stage("k");
  REQUIRE(claim(3).size() == 3);  // discarded, completed, running
  const auto available = stage("k");
  REQUIRE(claim(1)[0].id == retryable);
  REQUIRE(fail(*this, retryable, 1, "x", kT0 + 1000, false));
  REQUIRE(fail(*this, discarded, 1, "x", kT0, true));
  REQUIRE(complete(*this, completed, 1));

  clock.advance(50);
  auto revived = api(*this, discarded, true);  // discarded -> available
  REQUIRE(revived.has_value());
  CHECK(revived->state == "available");
  CHECK(revived->run_at == kT0 + 50);
  CHECK_FALSE(revived->finished_at.has_value());
  CHECK(revived->max_attempts == 2);           // one more attempt than it had used
  CHECK(revived->errors_json != "[]");         // its history is kept
  auto resumed = api(*this, cancelled, true);  // cancelled -> available
  REQUIRE(resumed.has_value());
  CHECK(resumed->state == "available");
  CHECK(resumed->max_attempts == 5);

  CHECK_FALSE(api(*this, completed, true).has_value());
  CHECK_FALSE(api(*this, running, true).has_value());
  CHECK_FALSE(api(*this, retryable, true).has_value());
  CHECK_FALSE(api(*this, available, true).has_value());
  CHECK(job(retryable).state == "retryable");
  CHECK(job(available).state == "available");
  CHECK(job(completed).state == "completed");
  CHECK(job(running).state == "running");
}

TEST_CASE_FIXTURE(JobsFixture, "a unique key makes staging a no-op until its job is finished") {
  db::NewJob j;
  j.kind = "k";
  j.unique_key = "welcome:42";
  const auto first = try_stage(j);
  REQUIRE(first.has_value());
  CHECK_FALSE(try_stage(j).has_value());  // available
  REQUIRE(claim(1).size() == 1);
  CHECK_FALSE(try_stage(j).has_value());  // running
  REQUIRE(fail(*this, *first, 1, "x", kT0, false));
  CHECK_FALSE(try_stage(j).has_value());  // retryable
  REQUIRE(claim(1).size() == 1);
  REQUIRE(complete(*this, *first, 2));
  const auto second = try_stage(j);  // finished: the key is free again
  REQUIRE(second.has_value());
  CHECK(*second != *first);
  db::NewJob other = j;
  other.unique_key = "welcome:43";
  CHECK(try_stage(other).has_value());
}

TEST_CASE_FIXTURE(JobsFixture, "a serial key runs its jobs one at a time in staging order") {
  db::NewJob j;
  j.kind = "k";
  j.serial_key = "subject:1";
  const auto first = stage(j);
  const auto second = stage(j);
  const auto unrelated = stage("k");
  auto claimed = claim(10);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].id == first);
  CHECK(claimed[1].id == unrelated);
  CHECK(claim(10).empty());  // second waits while first runs
  REQUIRE(fail(*this, first, 1, "x", kT0, false));
  auto retried = claim(10);  // ... and while first is retried
  REQUIRE(retried.size() == 1);
  CHECK(retried[0].id == first);
  REQUIRE(complete(*this, first, 2));
  auto next = claim(10);
  REQUIRE(next.size() == 1);
  CHECK(next[0].id == second);
}

TEST_CASE_FIXTURE(JobsFixture,
                  "the cleaner deletes finished jobs past the retention, and only them") {
  maintenance::Cleaner cleaner(*db, clock, maintenance::CleanerOptions{86400000, 60000, 2});
  const auto completed = stage("k");
  const auto discarded = stage("k");
  const auto cancelled = stage("k");
  const auto running = stage("k");
  REQUIRE(api(*this, cancelled, false).has_value());
  REQUIRE(claim(3).size() == 3);
  REQUIRE(complete(*this, completed, 1));
  REQUIRE(fail(*this, discarded, 1, "x", kT0, true));
  const auto waiting = stage("k");

  clock.advance(86400000);  // exactly the retention: kept
  const auto writes_before = db->counters().write_tx.load();
  CHECK(*cleaner.run_once() == 0);
  CHECK(db->counters().write_tx.load() == writes_before);  // a read showed no work

  clock.advance(1);
  const auto completed_later = stage("k");
  REQUIRE(claim(10).size() == 2);  // waiting and completed_later
  REQUIRE(complete(*this, completed_later, 1));
  auto deleted = cleaner.run_once();  // batches of 2: two deletes
  REQUIRE(deleted.is_ok());
  CHECK(*deleted == 3);
  CHECK_FALSE(exists(completed));
  CHECK_FALSE(exists(discarded));
  CHECK_FALSE(exists(cancelled));
  CHECK(exists(running));  // never touched, however old
  CHECK(exists(waiting));
  CHECK(exists(completed_later));  // finished within the retention
}

TEST_CASE("retry and cancel over HTTP answer 409 for the states they do not leave from") {
  testing::TempDir dir;
  testing::InProcessServer server{testing::test_config(dir)};
  auto http = server.client();
  using testing::request;

  // A completed job: the welcome email of a new user.
  REQUIRE(request(http, "PUT", "/users/jobs@example.com").status == 201);
  std::string welcome;
  REQUIRE(testing::eventually([&] {
    auto jobs = request(http, "GET", "/jobs?kind=send_welcome_email").json()["jobs"];
    if (jobs.size() != 1 || jobs[0]["state"] != "completed") return false;
    welcome = std::to_string(jobs[0]["id"].get<std::int64_t>());
    return true;
  }));
  auto retry_completed = request(http, "POST", "/jobs/" + welcome + "/retry");
  CHECK(retry_completed.status == 409);
  CHECK(retry_completed.json()["type"].get<std::string>().find("invalid-transition") !=
        std::string::npos);
  CHECK(request(http, "POST", "/jobs/" + welcome + "/cancel").status == 409);

  // A running job: staged for tomorrow, then claimed as tomorrow's runner
  // would, so the in-process runner never touches it.
  auto& database = server.app().db();
  const core::Millis now = core::SystemClock().now_ms();
  std::int64_t id = 0;
  REQUIRE(database
              .write([&](db::Tx& tx) {
                db::NewJob j;
                j.kind = "test_noop";
                j.run_at = now + 86400000;
                id = *db::stage_job(tx, j, now);
                auto claimed = db::claim_jobs(tx, 1, now + 86400000, now + 2 * 86400000);
                REQUIRE(claimed.size() == 1);
                return core::Status::ok();
              })
              .is_ok());
  const std::string running = std::to_string(id);
  CHECK(request(http, "POST", "/jobs/" + running + "/cancel").status == 409);
  CHECK(request(http, "POST", "/jobs/" + running + "/retry").status == 409);
  auto shown = request(http, "GET", "/jobs/" + running).json();
  CHECK(shown["state"] == "running");
  CHECK(shown["attempt"] == 1);

  // A scheduled (available) job: cancel, cancel again (409), retry.
  REQUIRE(database
              .write([&](db::Tx& tx) {
                db::NewJob j;
                j.kind = "test_noop";
                j.run_at = now + 86400000;
                id = *db::stage_job(tx, j, now);
                return core::Status::ok();
              })
              .is_ok());
  const std::string scheduled = std::to_string(id);
  CHECK(request(http, "POST", "/jobs/" + scheduled + "/retry").status == 409);
  auto cancelled = request(http, "POST", "/jobs/" + scheduled + "/cancel");
  REQUIRE(cancelled.status == 200);
  CHECK(cancelled.json()["state"] == "cancelled");
  CHECK_FALSE(cancelled.json()["finished_at"].is_null());
  CHECK(request(http, "POST", "/jobs/" + scheduled + "/cancel").status == 409);
  auto retried = request(http, "POST", "/jobs/" + scheduled + "/retry");
  REQUIRE(retried.status == 200);
  CHECK(retried.json()["state"] == "available");
  CHECK(retried.json()["finished_at"].is_null());

  CHECK(request(http, "POST", "/jobs/999999/retry").status == 404);
  CHECK(request(http, "POST", "/jobs/999999/cancel").status == 404);
}
