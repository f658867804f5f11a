// workflow::atomic_phase: one phase of a request in one write transaction
// (rocket-rides-atomic's atomic_phase). It finds the request's key as its
// KeySource says, runs the phase, applies the phase's outcome to the key row
// in the same transaction, and lets the phase's Status alone decide: ok
// commits the business rows and the key together; an error rolls both back,
// releases a lock held from an earlier phase (KeyEngine::unlock) and is
// returned unchanged.
//
// Single-phase writes are one atomic_phase (OpenKey, or NoKey without an
// Idempotency-Key). Checkout is a loop over recovery points, one
// atomic_phase per step (http/checkout_flow.h): OpenKey first, HeldKey after
// the charge, TakeKey when the completer resumes it.
//
// Group commit may run a phase again in a new transaction (db/database.h):
// a phase only writes through `tx` and keeps no state across runs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "core/status.h"
#include "db/database.h"
#include "workflow/key_engine.h"
#include "workflow/outcome.h"

namespace workflow {

// A write without an Idempotency-Key: the outcome goes nowhere.
struct NoKey {};
// Open the key in this phase's transaction (KeyEngine::open).
struct OpenKey {
  const KeyRequest& request;
  std::string workflow;
  bool with_gateway_key = false;
};
// Take the lock of an abandoned key (the completer; KeyEngine::take).
struct TakeKey {
  std::int64_t id;
};
// A key whose lock this caller took in an earlier phase. Re-read in the
// transaction: finished meanwhile (a stale-lock takeover) answers replay;
// gone (reaped) is kNotFound.
struct HeldKey {
  std::int64_t id;
};
using KeySource = std::variant<NoKey, OpenKey, TakeKey, HeldKey>;

// The phase. `key` is null for NoKey; otherwise the key, locked by this
// caller (`inserted` when this very transaction created it).
using Phase = std::function<core::Result<Outcome>(db::Tx& tx, const OpenedKey* key)>;

struct PhaseResult {
  // Not kProceed: the key answered by itself and the phase did not run
  // (TakeKey answers kInUse when the key cannot be taken).
  KeyAnswer answer = KeyAnswer::kProceed;
  std::optional<OpenedKey> key;    // the key, with the outcome applied
  std::optional<Outcome> outcome;  // set exactly when the phase ran
};

// Runs `phase` as described above. `keys` may be null for NoKey only.
// Write attempts are added to `attempts`.
[[nodiscard]] core::Result<PhaseResult> atomic_phase(db::Database& db, const KeyEngine* keys,
                                                     const KeySource& source, const Phase& phase,
                                                     Attempts& attempts);

// Database::write, adding its attempts to `attempts`: the one write wrapper
// of the workflow layer.
[[nodiscard]] core::Status write(db::Database& db,
                                 const std::function<core::Status(db::Tx&)>& phase,
                                 Attempts& attempts);

}  // namespace workflow
