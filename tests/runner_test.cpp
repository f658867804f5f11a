// The runner end to end on a real database with a ManualClock: retries with
// backoff until success or max_attempts, do_not_retry, fencing of a late
// completion (its effect rolled back), heartbeats, timeouts, the worker pool
// and graceful shutdown. Single passes (run_once, heartbeat_once) are called
// by the test; handlers move the clock and call the rescuer themselves to
// stage "the runner was slow" without sleeping.
#include <doctest/doctest.h>

#include <atomic>
#include <future>

#include "tests/support/jobs_fixture.h"

using testing::JobsFixture;
using testing::kT0;

TEST_CASE_FIXTURE(JobsFixture,
                  "a handler failing twice then succeeding ends completed with two errors") {
  std::atomic<int> calls{0};
  registry.add("flaky", jobs::Handler{[&](const jobs::Job&) {
                                        return ++calls <= 2 ? core::Status::unavailable(
                                                                  "flaky " + std::to_string(calls))
                                                            : core::Status::ok();
                                      },
                                      nullptr});
  const auto id = stage("flaky");

  CHECK(run_once() == 1);
  CHECK(job(id).state == "retryable");
  const core::Millis first_wait = job(id).run_at - clock.now_ms();
  CHECK(first_wait >= 750);  // base 1 s, jittered
  CHECK(first_wait <= 1250);
  CHECK(run_once() == 0);  // not before its backoff

  clock.set(job(id).run_at);
  CHECK(run_once() == 1);
  CHECK(job(id).state == "retryable");
  const core::Millis second_wait = job(id).run_at - clock.now_ms();
  CHECK(second_wait >= 1500);  // doubled
  CHECK(second_wait <= 2500);

  clock.set(job(id).run_at);
  CHECK(run_once() == 1);
  const auto row = job(id);
  CHECK(row.state == "completed");
  CHECK(row.attempt == 3);
  const auto errs = errors(id);
  REQUIRE(errs.size() == 2);
  CHECK(errs[0]["attempt"] == 1);
  CHECK(errs[0]["message"] == "flaky 1");
  CHECK(errs[1]["attempt"] == 2);
  CHECK(errs[1]["message"] == "flaky 2");
  CHECK(calls == 3);
}

TEST_CASE_FIXTURE(JobsFixture,
                  "an always failing handler is discarded after its kind's max_attempts") {
  registry.add(
      "doomed",
      jobs::Handler{[](const jobs::Job&) { return core::Status::internal("nope"); }, nullptr},
      jobs::KindOptions{3, 0});
  (void)runner();
  const auto id = stage("doomed");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    clock.set(std::max(clock.now_ms(), job(id).run_at));
    CHECK(run_once() == 1);
  }
  const auto row = job(id);
  CHECK(row.state == "discarded");
  CHECK(row.attempt == 3);
  CHECK(row.finished_at == std::optional<core::Millis>(clock.now_ms()));
  CHECK(errors(id).size() == 3);
  clock.advance(86400000);
  CHECK(run_once() == 0);
}

TEST_CASE_FIXTURE(JobsFixture,
                  "do_not_retry, a throwing handler and bad args are handled as failures") {
  registry.add("refused", jobs::Handler{[](const jobs::Job&) {
                                          return jobs::do_not_retry("receiver said 400");
                                        },
                                        nullptr});
  registry.add("thrower", jobs::Handler{[](const jobs::Job&) -> core::Status {
                                          throw std::runtime_error("kaboom");
                                        },
                                        nullptr});
  registry.add("needs_args",
               jobs::Handler{nullptr, [](const jobs::Job& job, db::Tx&, core::Millis) {
                               (void)job.args.at("missing").get<int>();
                               return core::Status::ok();
                             }});
  const auto refused = stage("refused");
  const auto thrower = stage("thrower");
  const auto needs_args = stage("needs_args");
  const auto unknown = stage("no_such_kind");
  CHECK(run_once() == 3);  // not the job of an unknown kind

  CHECK(job(refused).state == "discarded");  // at once, with attempts left
  CHECK(job(refused).attempt == 1);
  CHECK(errors(refused)[0]["message"] == "receiver said 400");
  CHECK(job(thrower).state == "retryable");
  CHECK(errors(thrower)[0]["message"] == "handler threw: kaboom");
  CHECK(job(needs_args).state == "discarded");  // bad args never get better
  CHECK(errors(needs_args)[0]["message"].get<std::string>().rfind("bad args", 0) == 0);
  // Left for a binary that knows its kind: never attempted, no attempt used.
  CHECK(job(unknown).state == "available");
  CHECK(job(unknown).attempt == 0);
}

TEST_CASE_FIXTURE(JobsFixture,
                  "apply and complete commit together: a failing apply leaves no effect") {
  registry.add("half",
               jobs::Handler{nullptr, [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
                               (void)testing::deliver_test_message(job, tx, now, "half@x");
                               return core::Status::internal("failed after the effect");
                             }});
  const auto id = stage("half");
  CHECK(run_once() == 1);
  CHECK(job(id).state == "retryable");
  CHECK(mailbox("half@x").empty());
}

TEST_CASE_FIXTURE(JobsFixture,
                  "a late completion of a rescued attempt is refused and its effect rolled back") {
  registry.add("slow_mail", jobs::Handler{[&](const jobs::Job& job) {
                                            if (job.attempt == 1) {
                                              // This runner stalls past its lease; the rescuer
                                              // takes the job.
                                              clock.advance(options.lease_ms + 1);
                                              auto rescued = rescuer.run_once();
                                              REQUIRE(rescued.is_ok());
                                              CHECK(*rescued == 1);
                                            }
                                            return core::Status::ok();
                                          },
                                          [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
                                            return testing::deliver_test_message(job, tx, now,
                                                                                 "late@x");
                                          }});
  const auto id = stage("slow_mail");
  std::vector<jobs::AttemptEvent> events;
  runner().set_observer([&](const jobs::AttemptEvent& e) { events.push_back(e); });

  CHECK(run_once() == 1);
  auto row = job(id);
  CHECK(row.state == "retryable");  // the rescuer's doing; the late completion changed nothing
  CHECK(row.attempt == 1);
  REQUIRE(errors(id).size() == 1);
  CHECK(errors(id)[0]["message"].get<std::string>().find("lease expired") != std::string::npos);
  CHECK(mailbox("late@x").empty());  // its apply was rolled back
  REQUIRE(events.size() == 1);
  CHECK_FALSE(events[0].ok);
  CHECK(events[0].error.find("was lost") != std::string::npos);

  CHECK(run_once() == 1);  // attempt 2 runs normally
  CHECK(job(id).state == "completed");
  CHECK(job(id).attempt == 2);
  CHECK(mailbox("late@x").size() == 1);
}

TEST_CASE_FIXTURE(JobsFixture, "a job taken again after a rescue delivers its effect once") {
  registry.add("overtaken",
               jobs::Handler{[&](const jobs::Job& job) {
                               if (job.attempt == 1) {
                                 clock.advance(options.lease_ms + 1);
                                 REQUIRE(*rescuer.run_once() == 1);
                                 CHECK(run_once() == 1);  // attempt 2 runs and completes meanwhile
                               }
                               return core::Status::ok();
                             },
                             [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
                               return testing::deliver_test_message(job, tx, now, "twice@x");
                             }});
  const auto id = stage("overtaken");
  CHECK(run_once() == 1);
  CHECK(job(id).state == "completed");
  CHECK(job(id).attempt == 2);
  CHECK(mailbox("twice@x").size() == 1);
}

TEST_CASE_FIXTURE(JobsFixture, "heartbeats keep a long job from being rescued") {
  registry.add("long",
               jobs::Handler{[&](const jobs::Job&) {
                               // Four leases long, with a heartbeat every third of a lease.
                               for (int i = 0; i < 12; ++i) {
                                 clock.advance(options.lease_ms / 3);
                                 auto beaten = runner().heartbeat_once();
                                 REQUIRE(beaten.is_ok());
                                 CHECK(*beaten == 1);
                                 CHECK(*rescuer.run_once() == 0);
                               }
                               return core::Status::ok();
                             },
                             nullptr},
               jobs::KindOptions{5, 0});
  const auto id = stage("long");
  CHECK(run_once() == 1);
  CHECK(job(id).state == "completed");
  CHECK(job(id).attempt == 1);
  CHECK(errors(id).empty());
  auto idle = runner().heartbeat_once();  // nothing in hand: no write
  REQUIRE(idle.is_ok());
  CHECK(*idle == 0);
}

TEST_CASE_FIXTURE(JobsFixture,
                  "a handler exceeding its timeout fails the attempt and is fenced out") {
  registry.add("hangs",
               jobs::Handler{[&](const jobs::Job& job) {
                               if (job.attempt == 1) {
                                 clock.advance(999);
                                 CHECK(*runner().heartbeat_once() == 1);  // within its timeout
                                 CHECK(job_state(job.id) == "running");
                                 clock.advance(1);
                                 REQUIRE(runner().heartbeat_once().is_ok());  // times it out
                                 CHECK(job_state(job.id) == "retryable");
                               }
                               return core::Status::ok();
                             },
                             [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
                               return testing::deliver_test_message(job, tx, now, "hangs@x");
                             }},
               jobs::KindOptions{5, 1000});
  const auto id = stage("hangs");
  CHECK(run_once() == 1);
  CHECK(job(id).state == "retryable");
  REQUIRE(errors(id).size() == 1);
  CHECK(errors(id)[0]["message"] == "timed out after 1000 ms");
  CHECK(mailbox("hangs@x").empty());

  clock.set(job(id).run_at);
  CHECK(run_once() == 1);
  CHECK(job(id).state == "completed");
  CHECK(mailbox("hangs@x").size() == 1);
}

TEST_CASE_FIXTURE(JobsFixture, "a pool of workers runs every job exactly once") {
  options.workers = 4;
  options.batch = 8;
  registry.add("mail",
               jobs::Handler{nullptr, [](const jobs::Job& job, db::Tx& tx, core::Millis now) {
                               return testing::deliver_test_message(job, tx, now, "pool@x");
                             }});
  constexpr int kJobs = 300;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < kJobs; ++i) ids.push_back(stage("mail"));
  std::atomic<int> attempts{0};
  runner().set_observer([&](const jobs::AttemptEvent&) { ++attempts; });
  runner().start();
  REQUIRE(testing::eventually([&] { return mailbox("pool@x").size() == kJobs; }));
  runner().stop();
  CHECK(attempts == kJobs);
  for (auto id : ids) {
    const auto row = job(id);
    CHECK(row.state == "completed");
    CHECK(row.attempt == 1);
  }
}

TEST_CASE_FIXTURE(JobsFixture, "stop lets the running job finish and claims nothing more") {
  options.workers = 1;
  std::promise<void> started;
  registry.add("finishes",
               jobs::Handler{[&](const jobs::Job&) {
                               started.set_value();
                               // Runs until the shutdown has begun, then finishes normally.
                               // (No doctest assertion here: this is a worker thread.)
                               return testing::eventually([&] { return runner_->stopping(); })
                                          ? core::Status::ok()
                                          : core::Status::internal("stop() never came");
                             },
                             nullptr});
  const auto running = stage("finishes");
  const auto waiting = stage("other");
  runner().start();
  started.get_future().wait();
  runner().stop();
  CHECK(job(running).state == "completed");
  CHECK(job(waiting).state == "available");
  CHECK(job(waiting).attempt == 0);
}

TEST_CASE_FIXTURE(JobsFixture,
                  "stop leaves a job running past the shutdown timeout to the rescuer") {
  options.workers = 1;
  options.shutdown_timeout_ms = 50;
  std::promise<void> started;
  std::promise<void> release;
  auto released = release.get_future().share();
  registry.add("stuck", jobs::Handler{[&, released](const jobs::Job&) {
                                        started.set_value();
                                        released.wait();
                                        return core::Status::ok();
                                      },
                                      nullptr});
  const auto id = stage("stuck");
  runner().start();
  started.get_future().wait();
  runner().stop();  // returns after the timeout, the handler still running
  CHECK(job(id).state == "running");

  clock.advance(options.lease_ms + 1);
  CHECK(*rescuer.run_once() == 1);
  release.set_value();
  runner_.reset();  // joins the worker; its late completion is fenced out
  CHECK(job(id).state == "retryable");
  CHECK(job(id).attempt == 1);
}
