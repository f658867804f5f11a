#include "app/checkout_flow.h"

#include <cstdio>
#include <cstdlib>

#include "app/request_scope.h"
#include "app/views.h"
#include "core/log.h"

namespace app {
namespace {

// Database::write, counting its attempts into the request's log line.
core::Status write(db::Database& db, const std::function<core::Status(db::Tx&)>& phase) {
  db::TxStats stats;
  core::Status st = db.write(phase, &stats);
  request_scope().tx_attempts += stats.attempts;
  return st;
}

}  // namespace

Reply CheckoutFlow::start(const KeyRef& key, const services::CheckoutRequest& request) {
  std::optional<Reply> early;
  std::optional<db::IdempotencyKeyRow> mine;
  core::Status st = write(db_, [&](db::Tx& tx) {
    early.reset();
    mine.reset();
    const core::Millis now = clock_.now_ms();
    if (auto row = db::find_idempotency_key(tx.conn(), key.scope, key.key)) {
      if ((early = answer_existing(*row, key, now, options_.lock_timeout_ms))) {
        return core::Status::ok();
      }
      if (!db::lock_key(tx, row->id, now, now - options_.lock_timeout_ms)) {
        early = idempotency_key_in_use();
        return core::Status::ok();
      }
      row->locked_at = now;
      mine = std::move(*row);
      return core::Status::ok();
    }
    db::IdempotencyKeyRow row = db::insert_started_key(tx, key, now);
    const std::int64_t order_id = checkout_.create_order(tx, request);
    db::set_recovery_point(tx, row.id, db::kPointOrderCreated, order_id);
    row.recovery_point = db::kPointOrderCreated;
    row.order_id = order_id;
    mine = std::move(row);
    return core::Status::ok();
  });
  if (!st) return problem_for(st);  // nothing committed: the retry starts afresh
  if (early) return *early;
  if (options_.crash_after == db::kPointOrderCreated) {
    core::log::warn("test_crash", {{"after", db::kPointOrderCreated}, {"exit_code", 86}});
    std::_Exit(86);
  }
  return continue_from(*mine).reply;
}

core::Result<bool> CheckoutFlow::resume(std::int64_t key_id) {
  std::optional<db::IdempotencyKeyRow> mine;
  core::Status st = write(db_, [&](db::Tx& tx) {
    mine.reset();
    const core::Millis now = clock_.now_ms();
    if (!db::lock_key(tx, key_id, now, now - options_.lock_timeout_ms)) return core::Status::ok();
    mine = db::find_idempotency_key_by_id(tx.conn(), key_id);
    return core::Status::ok();
  });
  if (!st) return st;
  if (!mine) return false;
  return continue_from(*mine).finished;
}

void CheckoutFlow::unlock(std::int64_t key_id) {
  // If even this fails, the lock goes stale after the lock timeout and the
  // key can be taken over then.
  (void)write(db_, [&](db::Tx& tx) {
    db::unlock_key(tx, key_id);
    return core::Status::ok();
  });
}

CheckoutFlow::Outcome CheckoutFlow::continue_from(const db::IdempotencyKeyRow& key) {
  if (key.recovery_point != db::kPointOrderCreated || !key.order_id) {
    // `started` is never committed on its own (phase 1 moves it to
    // order_created in the same transaction); anything else is a bug.
    unlock(key.id);
    return {problem(500, "internal", "Internal error",
                    "the checkout cannot be resumed from " + key.recovery_point),
            false};
  }
  if (!key.gateway_key) {
    // Every key inserted `started` gets one, and migration 5 gave one to
    // every key unfinished then.
    unlock(key.id);
    return {problem(500, "internal", "Internal error",
                    "the checkout's key has no gateway key to charge under"),
            false};
  }
  auto order = checkout_.get(*key.order_id);
  if (!order) {
    unlock(key.id);
    return {problem_for(order.status()), false};
  }

  // Phase 2: no transaction is open here.
  const services::ChargeResult charge = checkout_.charge(*order, *key.gateway_key);
  if (charge.outcome == services::ChargeOutcome::kFailed) {
    core::log::warn("charge_failed", {{"order_id", order->id}, {"error", charge.detail}});
    unlock(key.id);
    return {problem(503, "payment-gateway-unavailable", "Payment gateway unavailable",
                    "the payment gateway did not confirm the charge (" + charge.detail +
                        "); order " + std::to_string(order->id) +
                        " is kept: retry with the same Idempotency-Key, the payment is charged "
                        "at most once")
                .header("Retry-After", "1"),
            false};
  }

  // Phase 3.
  Reply reply;
  core::Status st = write(db_, [&](db::Tx& tx) {
    const core::Millis now = clock_.now_ms();
    auto current = db::find_idempotency_key_by_id(tx.conn(), key.id);
    if (!current) return core::Status::not_found("the idempotency key was reaped mid-checkout");
    if (current->response) {
      // A stale-lock takeover finished it first: answer what it stored.
      reply = replay(*current->response);
      return core::Status::ok();
    }
    std::optional<std::string> refused;
    if (charge.outcome == services::ChargeOutcome::kSucceeded) {
      refused = checkout_.refuse_charge(tx, *order, charge, *key.gateway_key);
    }
    if (refused) {
      // Not a charge for this order: it must never pay it. The order cannot
      // be paid under this key any more (the gateway answers this key with
      // that charge for ever), so it ends payment_failed and the answer is
      // stored.
      auto failed = checkout_.record_declined(tx, order->id, *refused);
      if (!failed) return failed.status();
      reply = problem(502, "payment-charge-mismatch", "Payment not made for this order",
                      *refused + "; order " + std::to_string(failed->id) +
                          " is payment_failed and was not paid");
    } else if (charge.outcome == services::ChargeOutcome::kSucceeded) {
      auto paid = checkout_.record_paid(tx, order->id, charge.charge_id);
      if (!paid) return paid.status();
      reply = json_reply(201, order_json(*paid));
      reply.header("Location", "/orders/" + std::to_string(paid->id));
    } else {
      auto declined = checkout_.record_declined(tx, order->id, charge.detail);
      if (!declined) return declined.status();
      reply = problem(402, "payment-declined", "Payment declined",
                      "the payment gateway declined the payment; order " +
                          std::to_string(declined->id) + " is payment_failed");
    }
    db::finish_key(tx, key.id, to_stored(reply), now);
    return core::Status::ok();
  });
  if (!st) {
    unlock(key.id);
    return {problem_for(st), false};
  }
  return {reply, true};
}

}  // namespace app
