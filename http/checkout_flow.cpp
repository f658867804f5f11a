#include "http/checkout_flow.h"

#include <cstdio>
#include <cstdlib>

#include "core/log.h"
#include "http/views.h"

namespace app {

Reply CheckoutFlow::start(WriteContext& w, const services::CheckoutRequest& request) {
  const KeyRef& ref = *w.key();
  // Phase 1, one transaction: open the key and, when this request created
  // it, create the order and move the key to order_created. A retry of an
  // unfinished key takes its lock (free or stale) and resumes at its
  // recovery point; nothing else is written.
  auto opened = workflow::atomic_phase(
      db_, &keys_, workflow::OpenKey{ref, workflow::kCheckout, /*with_gateway_key=*/true},
      [&](db::Tx& tx, const workflow::OpenedKey* key) -> core::Result<workflow::Outcome> {
        if (!key->inserted) return workflow::Outcome{workflow::NoOp{}};
        return workflow::Outcome{
            workflow::RecoveryPoint{db::kPointOrderCreated, checkout_.create_order(tx, request)}};
      },
      w.attempts());
  if (!opened) return problem_for(opened.status());  // nothing committed: the retry starts afresh
  if (opened->answer != workflow::KeyAnswer::kProceed) {
    w.set_answer(opened->answer);
    return reply_for(*opened->key, ref);
  }
  if (options_.crash_after == db::kPointOrderCreated) {
    core::log::warn("test_crash", {{"after", db::kPointOrderCreated}, {"exit_code", 86}});
    std::_Exit(86);
  }
  Run done = run(std::move(opened->key->row), w.attempts());
  w.set_answer(done.answer);
  return std::move(done.reply);
}

core::Result<bool> CheckoutFlow::resume(std::int64_t key_id) {
  workflow::Attempts attempts;  // no request log line to count them in
  auto taken = workflow::atomic_phase(
      db_, &keys_, workflow::TakeKey{key_id},
      [](db::Tx&, const workflow::OpenedKey*) -> core::Result<workflow::Outcome> {
        return workflow::Outcome{workflow::NoOp{}};
      },
      attempts);
  if (!taken) return taken.status();
  if (taken->answer != workflow::KeyAnswer::kProceed) return false;  // held, or finished
  return run(std::move(taken->key->row), attempts).finished;
}

CheckoutFlow::Run CheckoutFlow::give_up(const db::IdempotencyKeyRow& key, Reply reply,
                                        workflow::Attempts& attempts) {
  keys_.unlock(db_, key.id, attempts);
  return {std::move(reply), false};
}

CheckoutFlow::Run CheckoutFlow::run(db::IdempotencyKeyRow key, workflow::Attempts& attempts) {
  std::optional<Reply> answered;  // the response this call stored
  for (;;) {
    if (key.recovery_point == db::kPointFinished && key.response) {
      if (answered) return {std::move(*answered), true};
      return {replay(*key.response), true, workflow::KeyAnswer::kReplay};
    }
    if (key.recovery_point != db::kPointOrderCreated || !key.order_id) {
      // `started` is never committed on its own (phase 1 moves it to
      // order_created in the same transaction); anything else is a bug.
      return give_up(key,
                     problem(500, "internal", "Internal error",
                             "the checkout cannot be resumed from " + key.recovery_point),
                     attempts);
    }
    // order_created -> finished.
    if (!key.gateway_key) {
      // Every key inserted `started` by checkout gets one, and migration 5
      // gave one to every key unfinished then.
      return give_up(key,
                     problem(500, "internal", "Internal error",
                             "the checkout's key has no gateway key to charge under"),
                     attempts);
    }
    auto order = checkout_.get(*key.order_id);
    if (!order) return give_up(key, problem_for(order.status()), attempts);

    // Phase 2: no transaction is open here.
    const services::ChargeResult charge = checkout_.charge(*order, *key.gateway_key);
    if (charge.outcome == services::ChargeOutcome::kFailed) {
      core::log::warn("charge_failed", {{"order_id", order->id}, {"error", charge.detail}});
      return give_up(
          key,
          problem(503, "payment-gateway-unavailable", "Payment gateway unavailable",
                  "the payment gateway did not confirm the charge (" + charge.detail + "); order " +
                      std::to_string(order->id) +
                      " is kept: retry with the same Idempotency-Key, the payment is charged "
                      "at most once")
              .header("Retry-After", "1"),
          attempts);
    }

    // Phase 3, one transaction on the key this caller holds: the order's
    // outcome and the stored response.
    Reply reply;
    auto recorded = workflow::atomic_phase(
        db_, &keys_, workflow::HeldKey{key.id},
        [&](db::Tx& tx, const workflow::OpenedKey*) -> core::Result<workflow::Outcome> {
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
          return workflow::Outcome{workflow::Response{to_stored(reply)}};
        },
        attempts);
    // A failure rolled back and released the lock (atomic_phase).
    if (!recorded) return {problem_for(recorded.status()), false};
    // A stale-lock takeover finished it first: the loop answers what it
    // stored (kReplay).
    if (recorded->answer == workflow::KeyAnswer::kProceed) answered = std::move(reply);
    key = std::move(recorded->key->row);
  }
}

}  // namespace app
