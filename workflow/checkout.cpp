#include "workflow/checkout.h"

#include <cstdlib>

#include "core/log.h"

namespace workflow {

CheckoutResult CheckoutWorkflow::start(const KeyRequest& key,
                                       const services::CheckoutRequest& request,
                                       Attempts& attempts) const {
  // Phase 1, one transaction: open the key and, when this request created
  // it, create the order and move the key to order_created. A retry of an
  // unfinished key takes its lock (free or stale) and resumes at its
  // recovery point; nothing else is written.
  auto opened = atomic_phase(
      db_, &keys_, OpenKey{key, kCheckout, /*with_gateway_key=*/true},
      [&](db::Tx& tx, const OpenedKey* opened_key) -> core::Result<Outcome> {
        if (!opened_key->inserted) return Outcome{NoOp{}};
        return Outcome{RecoveryPoint{db::kPointOrderCreated, checkout_.create_order(tx, request)}};
      },
      attempts);
  CheckoutResult result;
  if (!opened) {
    result.failure = opened.status();  // nothing committed: the retry starts afresh
    return result;
  }
  if (opened->answer != KeyAnswer::kProceed) {
    result.answer = opened->answer;
    result.key = std::move(opened->key);
    return result;
  }
  if (options_.crash_after == db::kPointOrderCreated) {
    core::log::warn("test_crash", {{"after", db::kPointOrderCreated}, {"exit_code", 86}});
    std::_Exit(86);
  }
  return run(std::move(opened->key->row), attempts);
}

core::Result<bool> CheckoutWorkflow::resume(std::int64_t key_id) const {
  Attempts attempts;  // no request log line to count them in
  auto taken = atomic_phase(
      db_, &keys_, TakeKey{key_id},
      [](db::Tx&, const OpenedKey*) -> core::Result<Outcome> { return Outcome{NoOp{}}; }, attempts);
  if (!taken) return taken.status();
  if (taken->answer != KeyAnswer::kProceed) return false;  // held, or finished
  return run(std::move(taken->key->row), attempts).response.has_value();
}

CheckoutResult CheckoutWorkflow::give_up(const db::IdempotencyKeyRow& key, core::Status failure,
                                         Attempts& attempts) const {
  keys_.unlock(db_, key.id, attempts);
  CheckoutResult result;
  result.failure = std::move(failure);
  return result;
}

CheckoutResult CheckoutWorkflow::run(db::IdempotencyKeyRow key, Attempts& attempts) const {
  bool stored_here = false;  // this call stored the response
  for (;;) {
    if (key.recovery_point == db::kPointFinished && key.response) {
      CheckoutResult result;
      result.answer = stored_here ? KeyAnswer::kProceed : KeyAnswer::kReplay;
      result.response = std::move(*key.response);
      return result;
    }
    if (key.recovery_point != db::kPointOrderCreated || !key.order_id) {
      // `started` is never committed on its own (phase 1 moves it to
      // order_created in the same transaction); anything else is a bug.
      CheckoutResult result = give_up(
          key, core::Status::internal("the checkout cannot be resumed from " + key.recovery_point),
          attempts);
      result.broken_key = true;
      return result;
    }
    // order_created -> finished.
    if (!key.gateway_key) {
      // Every key inserted `started` by checkout gets one, and migration 5
      // gave one to every key unfinished then.
      CheckoutResult result = give_up(
          key, core::Status::internal("the checkout's key has no gateway key to charge under"),
          attempts);
      result.broken_key = true;
      return result;
    }
    auto order = checkout_.get(*key.order_id);
    if (!order) return give_up(key, order.status(), attempts);

    // Phase 2: no transaction is open here.
    const services::ChargeResult charge = checkout_.charge(*order, *key.gateway_key);
    if (charge.outcome == services::ChargeOutcome::kFailed) {
      core::log::warn("charge_failed", {{"order_id", order->id}, {"error", charge.detail}});
      CheckoutResult result = give_up(key, core::Status::unavailable(charge.detail), attempts);
      result.gateway_unavailable = true;
      result.order_id = order->id;
      return result;
    }

    // Phase 3, one transaction on the key this caller holds: the order's
    // outcome and the stored response.
    auto recorded = atomic_phase(
        db_, &keys_, HeldKey{key.id},
        [&](db::Tx& tx, const OpenedKey*) -> core::Result<Outcome> {
          std::optional<std::string> refused;
          if (charge.outcome == services::ChargeOutcome::kSucceeded) {
            refused = checkout_.refuse_charge(tx, *order, charge, *key.gateway_key);
          }
          if (refused) {
            // Not a charge for this order: it must never pay it. The order
            // cannot be paid under this key any more (the gateway answers
            // this key with that charge for ever), so it ends payment_failed
            // and the answer is stored.
            auto failed = checkout_.record_declined(tx, order->id, *refused);
            if (!failed) return failed.status();
            return Outcome{Response{responses_.charge_mismatch(*failed, *refused)}};
          }
          if (charge.outcome == services::ChargeOutcome::kSucceeded) {
            auto paid = checkout_.record_paid(tx, order->id, charge.charge_id);
            if (!paid) return paid.status();
            return Outcome{Response{responses_.paid(*paid)}};
          }
          auto declined = checkout_.record_declined(tx, order->id, charge.detail);
          if (!declined) return declined.status();
          return Outcome{Response{responses_.declined(*declined)}};
        },
        attempts);
    // A failure rolled back and released the lock (atomic_phase).
    if (!recorded) {
      CheckoutResult result;
      result.failure = recorded.status();
      return result;
    }
    // A stale-lock takeover finished it first: the loop answers what it
    // stored (kReplay).
    stored_here = recorded->answer == KeyAnswer::kProceed;
    key = std::move(recorded->key->row);
  }
}

}  // namespace workflow
