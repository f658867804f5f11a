// workflow::CheckoutWorkflow: POST /checkout as a sequence of atomic phases
// with recovery points stored on the idempotency key (rocket-rides-atomic's
// api.rb), with no HTTP in it.
//
//   phase 1 (one write transaction): insert the key `started` and locked,
//           create the order (pending) + its audit row, move the key to
//           `order_created`. A retry of an unfinished key instead takes its
//           lock (free or stale) and resumes at its recovery point.
//   phase 2 (NO transaction open): charge the gateway under the key row's
//           own gateway key (random, stored on the row; never the client's
//           string), so any number of retries charge once, and a client key
//           used again after its record was reaped is a new operation with
//           a new charge.
//   phase 3 (one write transaction): paid -> order paid, jobs staged, the
//           `paid` response stored; declined -> order payment_failed, the
//           `declined` response stored; a charge that was not made for this
//           order (another amount, another key, or one already paying
//           another order) -> order payment_failed, the `charge_mismatch`
//           response stored. The key becomes `finished` and unlocked in the
//           same transaction.
//   gateway error or timeout: unlock the key, keep `order_created`, store
//           nothing (CheckoutResult::gateway_unavailable). The client's
//           retry, or the completer (workflow/completer.h), resumes at
//           phase 2.
//
// The phases are atomic_phase calls on the one key engine: phase 1 opens
// the key (OpenKey) and answers a RecoveryPoint, phase 3 answers a Response
// on the key it holds (HeldKey), and run() is the loop over recovery points
// that the client's retry and the completer (TakeKey) both enter. What the
// stored responses say is the caller's (CheckoutResponses; the HTTP layer
// renders them), so the completer stores exactly what the client would have
// got.
//
// Thread-safe: all state is in the database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "services/checkout.h"
#include "workflow/atomic_phase.h"
#include "workflow/key_engine.h"
#include "workflow/outcome.h"

namespace workflow {

// The answers phase 3 stores on the key, rendered by the caller (the HTTP
// layer: status, headers and body, byte for byte what the client gets).
// Called inside the phase's transaction; must not block.
class CheckoutResponses {
 public:
  virtual ~CheckoutResponses() = default;
  virtual StoredResponse paid(const services::Order& order) const = 0;
  virtual StoredResponse declined(const services::Order& order) const = 0;
  // `why`: the charge the gateway answered was not made for this order.
  virtual StoredResponse charge_mismatch(const services::Order& order,
                                         const std::string& why) const = 0;
};

// How one run of the checkout ended.
struct CheckoutResult {
  // kProceed: this call ran the phases. Otherwise the key answered by
  // itself (`key` is set): kReplay (finished before, or by a takeover
  // meanwhile: `response` is what it stored), kMismatch, kInUse.
  KeyAnswer answer = KeyAnswer::kProceed;
  std::optional<OpenedKey> key;
  // Set when the key is finished: the stored response (this call's, or the
  // one replayed).
  std::optional<StoredResponse> response;
  // Not finished and nothing stored (the key is unlocked for a retry): why.
  core::Status failure = core::Status::ok();
  // The failure is the gateway's (error or timeout); the order is kept and a
  // retry with the same key charges at most once.
  bool gateway_unavailable = false;
  std::int64_t order_id = 0;  // with gateway_unavailable
  // The failure is a broken invariant of the key row (a bug: a recovery
  // point the loop cannot resume from), told as it is rather than hidden.
  bool broken_key = false;
};

struct CheckoutOptions {
  core::Millis lock_timeout_ms = 90'000;
  // Test hook: "order_created" makes the process _exit(86) right after phase
  // 1 commits, to test recovery after a crash between phases.
  std::string crash_after;
};

class CheckoutWorkflow {
 public:
  // `checkout` and `responses` are not owned and must outlive this.
  CheckoutWorkflow(db::Database& db, const core::Clock& clock, const services::Checkout& checkout,
                   const CheckoutResponses& responses, CheckoutOptions options)
      : db_(db),
        checkout_(checkout),
        responses_(responses),
        options_(std::move(options)),
        keys_(clock, options_.lock_timeout_ms) {}

  // Runs or resumes the checkout of `key` (already validated). Transactions
  // are counted in `attempts`.
  CheckoutResult start(const KeyRequest& key, const services::CheckoutRequest& request,
                       Attempts& attempts) const;

  // The completer's entry: takes the lock of an abandoned key and drives it
  // to `finished`. True when it finished; false when someone else holds it or
  // the gateway failed again (the key is then left unlocked for later).
  core::Result<bool> resume(std::int64_t key_id) const;

 private:
  // The loop over recovery points, from a key this caller holds the lock of.
  CheckoutResult run(db::IdempotencyKeyRow key, Attempts& attempts) const;
  // Releases the lock; the failure is not stored.
  CheckoutResult give_up(const db::IdempotencyKeyRow& key, core::Status failure,
                         Attempts& attempts) const;

  db::Database& db_;
  const services::Checkout& checkout_;
  const CheckoutResponses& responses_;
  const CheckoutOptions options_;
  const KeyEngine keys_;
};

}  // namespace workflow
