// workflow::Outcome: what one atomic phase of a request answers, in the
// shape of rocket-rides-atomic's api.rb. No HTTP here: a stored response is
// a status, a content type, headers and a body, byte for byte; the HTTP side
// (http/idempotency.h) converts its replies to and from it.
//
// A phase runs inside the open write transaction (db::Tx) and returns
// core::Result<Outcome>. Its Status alone decides the transaction:
// - ok: the outcome is applied to the key row in the same transaction
//   (workflow/key_engine.h), then everything commits together;
// - an error: everything the phase wrote rolls back, the key's lock is
//   released, nothing is stored, and the error goes back to the caller, so a
//   retry with the same key runs afresh.
// So a phase returns an error only for a failure (storage, a bug, a broken
// invariant). A refusal that is the request's own answer (invalid input, a
// missing row, an illegal transition: is_refusal) is a Response, stored and
// replayed like any other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/status.h"
#include "db/idempotency.h"

namespace workflow {

// The workflows a key can belong to (idempotency_keys.workflow).
// checkout: phases with recovery points between, resumable by the completer.
// single_phase: every other keyed write, one atomic phase that inserts the
// key and finishes it in one transaction.
inline constexpr char kCheckout[] = "checkout";
inline constexpr char kSinglePhase[] = "single_phase";

using StoredResponse = db::StoredResponse;

// Nothing to record on the key (its lock is kept for the next phase).
struct NoOp {};
// The phase's work is committed: the key moves to `name` (keeping its lock),
// recording the order it made, if any.
struct RecoveryPoint {
  std::string name;
  std::optional<std::int64_t> order_id;
};
// The request's answer: the key is finished with it and unlocked.
struct Response {
  StoredResponse stored;
};

using Outcome = std::variant<NoOp, RecoveryPoint, Response>;

// Whether a service's error Status is the request's own answer (invalid, not
// found, conflict: the same request gets it again, so it is stored) rather
// than a failure (busy, storage full, unavailable, internal) that must roll
// back so that a retry runs afresh.
[[nodiscard]] inline bool is_refusal(const core::Status& st) noexcept {
  switch (st.code()) {
    case core::Code::kInvalid:
    case core::Code::kNotFound:
    case core::Code::kConflict:
      return true;
    default:
      return false;
  }
}

// Write transactions (attempts, BEGINs included) a workflow made for one
// caller, for the request's log line (http/request_scope.h).
struct Attempts {
  int transactions = 0;
};

}  // namespace workflow
