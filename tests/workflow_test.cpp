// workflow/: the key engine and atomic_phase on a real database file, with a
// ManualClock and no HTTP. A phase's Status alone commits or rolls back; its
// outcome lands on the key row in the same transaction; a key is opened by
// insert-or-nothing then lock, and answers proceed, replay, mismatch or in
// use; a failure releases a lock held from an earlier phase. Both commit
// modes (AFTERCOMMIT_COMMIT), as every suite.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "db/database.h"
#include "db/idempotency.h"
#include "db/orders.h"
#include "db/users.h"
#include "tests/support/harness.h"
#include "tests/support/jobs_fixture.h"
#include "workflow/atomic_phase.h"
#include "workflow/key_engine.h"

namespace {

using workflow::KeyAnswer;

constexpr core::Millis kLockTimeout = 30'000;

struct Fixture {
  testing::TempDir dir;
  core::ManualClock clock{testing::kT0};
  std::unique_ptr<db::Database> db = testing::open_test_db(dir);
  workflow::KeyEngine keys{clock, kLockTimeout};
  workflow::Attempts attempts;

  static workflow::KeyRequest request(const std::string& key, char fingerprint = 'a') {
    return {"anonymous", key, "POST", "/things", std::string(64, fingerprint)};
  }
  std::optional<db::IdempotencyKeyRow> row(const std::string& key) {
    std::optional<db::IdempotencyKeyRow> found;
    REQUIRE(db->read([&](db::Conn& c) {
                found = db::find_idempotency_key(c, "anonymous", key);
                return core::Status::ok();
              }).is_ok());
    return found;
  }
  std::int64_t users() {
    std::int64_t n = 0;
    REQUIRE(db->read([&](db::Conn& c) {
                n = db::count_users(c);
                return core::Status::ok();
              }).is_ok());
    return n;
  }
  // One single-phase write: inserts a user and answers `status`, or fails
  // with `failure` after inserting it.
  core::Result<workflow::PhaseResult> write_user(const workflow::KeyRequest& ref,
                                                 const std::string& email, int status,
                                                 std::optional<core::Status> failure = {}) {
    return workflow::atomic_phase(
        *db, &keys, workflow::OpenKey{ref, workflow::kSinglePhase},
        [&](db::Tx& tx, const workflow::OpenedKey*) -> core::Result<workflow::Outcome> {
          (void)db::insert_user_if_absent(tx, email, clock.now_ms());
          if (failure) return *failure;
          return workflow::Outcome{workflow::Response{
              {status, "application/json", "[]", "{\"email\":\"" + email + "\"}"}}};
        },
        attempts);
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a response commits with the phase and finishes the key it opened") {
  auto done = write_user(request("k1"), "a@example.com", 201);
  REQUIRE(done.is_ok());
  CHECK(done->answer == KeyAnswer::kProceed);
  REQUIRE(done->key);
  CHECK(done->key->inserted);
  CHECK(users() == 1);
  auto stored = row("k1");
  REQUIRE(stored);
  CHECK(stored->workflow == "single_phase");
  CHECK(stored->recovery_point == "finished");
  CHECK_FALSE(stored->locked_at);
  CHECK_FALSE(stored->gateway_key);
  REQUIRE(stored->response);
  CHECK(stored->response->status == 201);
  CHECK(stored->response->body == R"({"email":"a@example.com"})");
  CHECK(attempts.transactions >= 1);
}

TEST_CASE_FIXTURE(Fixture,
                  "an opened key answers replay, mismatch, and never runs the phase again") {
  REQUIRE(write_user(request("k2"), "a@example.com", 201).is_ok());
  auto again = write_user(request("k2"), "b@example.com", 201);
  REQUIRE(again.is_ok());
  CHECK(again->answer == KeyAnswer::kReplay);
  CHECK_FALSE(again->outcome);
  REQUIRE(again->key->row.response);
  CHECK(again->key->row.response->body == R"({"email":"a@example.com"})");
  auto other = write_user(request("k2", 'b'), "c@example.com", 201);
  REQUIRE(other.is_ok());
  CHECK(other->answer == KeyAnswer::kMismatch);
  CHECK(users() == 1);

  // The read-only fast path answers the same without a write.
  std::optional<workflow::OpenedKey> looked;
  REQUIRE(db->read([&](db::Conn& c) {
              looked = keys.look(c, request("k2"));
              return core::Status::ok();
            }).is_ok());
  REQUIRE(looked);
  CHECK(looked->answer == KeyAnswer::kReplay);
}

TEST_CASE_FIXTURE(Fixture, "a phase's error Status rolls back the phase and the key it opened") {
  for (const core::Status& failure :
       {core::Status::internal("bug"), core::Status::unavailable("down"),
        core::Status::not_found("a refusal returned as an error still rolls back")}) {
    CAPTURE(failure.to_string());
    auto failed = write_user(request("k3"), "a@example.com", 201, failure);
    REQUIRE_FALSE(failed.is_ok());
    CHECK(failed.status().code() == failure.code());
    CHECK(users() == 0);
    CHECK_FALSE(row("k3"));
  }
  // The retry runs afresh.
  auto retry = write_user(request("k3"), "a@example.com", 201);
  REQUIRE(retry.is_ok());
  CHECK(retry->answer == KeyAnswer::kProceed);
  CHECK(users() == 1);
}

TEST_CASE_FIXTURE(Fixture, "a recovery point keeps the lock; a later phase's failure releases it") {
  const auto ref = request("k4");
  std::int64_t order_id = 0;
  auto first = workflow::atomic_phase(
      *db, &keys, workflow::OpenKey{ref, workflow::kCheckout, true},
      [&](db::Tx& tx, const workflow::OpenedKey* key) -> core::Result<workflow::Outcome> {
        CHECK(key->inserted);
        order_id = db::insert_order(tx, {"b@example.com", "+15550100200", 100, "tok_visa", {}},
                                    clock.now_ms());
        return workflow::Outcome{workflow::RecoveryPoint{db::kPointOrderCreated, order_id}};
      },
      attempts);
  REQUIRE(first.is_ok());
  auto held = row("k4");
  REQUIRE(held);
  CHECK(held->workflow == "checkout");
  CHECK(held->gateway_key);
  CHECK(held->recovery_point == "order_created");
  CHECK(held->order_id == order_id);
  CHECK(held->locked_at);

  // Another request meanwhile: in use.
  auto busy = write_user(ref, "x@example.com", 201);
  REQUIRE(busy.is_ok());
  CHECK(busy->answer == KeyAnswer::kInUse);

  auto failed = workflow::atomic_phase(
      *db, &keys, workflow::HeldKey{held->id},
      [&](db::Tx&, const workflow::OpenedKey*) -> core::Result<workflow::Outcome> {
        return core::Status::unavailable("the gateway did not answer");
      },
      attempts);
  REQUIRE_FALSE(failed.is_ok());
  auto released = row("k4");
  REQUIRE(released);
  CHECK_FALSE(released->locked_at);
  CHECK(released->recovery_point == "order_created");

  // Unlocked: the completer's way in takes it, and a second taker is refused.
  auto taken = workflow::atomic_phase(
      *db, &keys, workflow::TakeKey{held->id},
      [](db::Tx&, const workflow::OpenedKey*) -> core::Result<workflow::Outcome> {
        return workflow::Outcome{workflow::NoOp{}};
      },
      attempts);
  REQUIRE(taken.is_ok());
  CHECK(taken->answer == KeyAnswer::kProceed);
  auto second = workflow::atomic_phase(
      *db, &keys, workflow::TakeKey{held->id},
      [](db::Tx&, const workflow::OpenedKey*) -> core::Result<workflow::Outcome> {
        return workflow::Outcome{workflow::NoOp{}};
      },
      attempts);
  REQUIRE(second.is_ok());
  CHECK(second->answer == KeyAnswer::kInUse);

  // A stale lock is taken over by the same request, which then finishes it.
  clock.advance(kLockTimeout + 1);
  auto finished = workflow::atomic_phase(
      *db, &keys, workflow::OpenKey{ref, workflow::kCheckout, true},
      [&](db::Tx&, const workflow::OpenedKey* key) -> core::Result<workflow::Outcome> {
        CHECK_FALSE(key->inserted);
        CHECK(key->row.order_id == order_id);
        return workflow::Outcome{workflow::Response{{201, "application/json", "[]", "{}"}}};
      },
      attempts);
  REQUIRE(finished.is_ok());
  CHECK(finished->answer == KeyAnswer::kProceed);
  CHECK(row("k4")->recovery_point == "finished");
  CHECK_FALSE(row("k4")->locked_at);
}

TEST_CASE_FIXTURE(Fixture, "a write without a key runs its phase and stores nothing") {
  auto done = workflow::atomic_phase(
      *db, nullptr, workflow::NoKey{},
      [&](db::Tx& tx, const workflow::OpenedKey* key) -> core::Result<workflow::Outcome> {
        CHECK(key == nullptr);
        (void)db::insert_user_if_absent(tx, "plain@example.com", clock.now_ms());
        return workflow::Outcome{workflow::NoOp{}};
      },
      attempts);
  REQUIRE(done.is_ok());
  CHECK(done->answer == KeyAnswer::kProceed);
  CHECK_FALSE(done->key);
  CHECK(users() == 1);
}
