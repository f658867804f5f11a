// app::CheckoutFlow: POST /checkout as a sequence of atomic phases with
// recovery points stored on the idempotency key (rocket-rides-atomic).
//
//   phase 1 (one IMMEDIATE tx): insert the key `started` and locked, create
//           the order (pending) + its audit row, move the key to
//           `order_created`. A retry of an unfinished key instead takes its
//           lock (free or stale) and resumes at its recovery point.
//   phase 2 (NO transaction open): charge the gateway over HTTP under the
//           key row's own gateway key (random, stored on the row; never the
//           client's string), so any number of retries charge once, and a
//           client key used again after its record was reaped is a new
//           operation with a new charge.
//   phase 3 (one IMMEDIATE tx): paid -> order paid, jobs staged, 201 stored;
//           declined -> order payment_failed, 402 stored; a charge that was
//           not made for this order (another amount, another key, or one
//           already paying another order) -> order payment_failed, 502
//           /problems/payment-charge-mismatch stored. The key becomes
//           `finished` and unlocked in the same transaction.
//   gateway error or timeout: unlock the key, keep `order_created`, answer
//           503 (not stored). The client's retry, or the completer, resumes
//           at phase 2.
//
// The phases are workflow::atomic_phase calls on the one key engine
// (workflow/key_engine.h): phase 1 opens the key (OpenKey) and answers a
// RecoveryPoint, phase 3 answers a Response on the key it holds (HeldKey),
// and run() is the loop over recovery points that the client's retry and the
// completer (TakeKey) both enter. What lives here is the HTTP half: the
// stored response is the HTTP reply (status, Location, body), and the
// completer must store exactly what the client would have got.
//
// Thread-safe: all state is in the database.
#pragma once

#include <cstdint>
#include <string>

#include "http/http.h"
#include "http/idempotency.h"
#include "http/router.h"
#include "core/clock.h"
#include "db/database.h"
#include "services/checkout.h"
#include "workflow/atomic_phase.h"
#include "workflow/key_engine.h"

namespace app {

struct CheckoutFlowOptions {
  core::Millis lock_timeout_ms = 90'000;
  // Test hook: "order_created" makes the process _exit(86) right after phase
  // 1 commits, to test recovery after a crash between phases.
  std::string crash_after;
};

class CheckoutFlow {
 public:
  CheckoutFlow(db::Database& db, const core::Clock& clock, const services::Checkout& checkout,
               CheckoutFlowOptions options)
      : db_(db),
        checkout_(checkout),
        options_(std::move(options)),
        keys_(clock, options_.lock_timeout_ms) {}

  // Runs or resumes the checkout of the request's key (w.key(): already
  // validated and checked by the idempotency layer's fast path) and returns
  // the reply; what the key answered goes to w.set_answer.
  Reply start(WriteContext& w, const services::CheckoutRequest& request);

  // The completer's entry: takes the lock of an abandoned key and drives it
  // to `finished`. True when it finished; false when someone else holds it or
  // the gateway failed again (the key is then left unlocked for later).
  core::Result<bool> resume(std::int64_t key_id);

 private:
  struct Run {
    Reply reply;
    bool finished = false;
    workflow::KeyAnswer answer = workflow::KeyAnswer::kProceed;
  };
  // The loop over recovery points, from a key this caller holds the lock of.
  Run run(db::IdempotencyKeyRow key, workflow::Attempts& attempts);
  // Releases the lock, with the reply of a failure that is not stored.
  Run give_up(const db::IdempotencyKeyRow& key, Reply reply, workflow::Attempts& attempts);

  db::Database& db_;
  const services::Checkout& checkout_;
  const CheckoutFlowOptions options_;
  const workflow::KeyEngine keys_;
};

}  // namespace app
