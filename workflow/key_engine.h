// workflow::KeyEngine: the one place an idempotency key is opened, answered,
// locked, moved by a phase's outcome and unlocked (API.md "Idempotency-Key";
// rocket-rides-atomic's api.rb). Every keyed write goes through it: the
// single-phase writes and each phase of checkout.
//
// Opening a key inside a write transaction (open):
// 1. insert-or-nothing: INSERT ... ON CONFLICT (scope, key) DO NOTHING, the
//    key `started` and locked by this caller; the UNIQUE constraint, not a
//    look-up before it, decides which of two writers creates the key;
// 2. when it existed: lock its row ("lock key": re-read inside the same
//    transaction; SELECT ... FOR UPDATE on an engine with row locks) and
//    answer it (answer()): another fingerprint -> mismatch; finished ->
//    replay; locked less than the lock timeout ago -> in_use; otherwise the
//    caller takes its lock over -> proceed.
// Nothing of that is ever written on its own: it commits with the phase
// that runs next in the same transaction (workflow/atomic_phase.h), or
// rolls back with it.
//
// look() answers the same on a read connection, without writing: the fast
// path that replays a finished key without taking the write lock.
//
// Thread-safe: all state is in the database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.h"
#include "db/database.h"
#include "db/idempotency.h"
#include "workflow/outcome.h"

namespace workflow {

using KeyRequest = db::NewIdempotencyKey;  // scope, key, method, path, fingerprint

enum class KeyAnswer {
  kProceed,   // the caller holds the key's lock: run the next phase
  kReplay,    // finished: answer its stored response
  kMismatch,  // used by another request (another fingerprint)
  kInUse,     // locked by a request or the completer that is still alive
};
// "proceed", "replay", "mismatch", "in_use".
const char* answer_name(KeyAnswer answer) noexcept;

struct OpenedKey {
  KeyAnswer answer = KeyAnswer::kProceed;
  // proceed: the key, locked by this caller; otherwise the key as found
  // (the stored response of a replay, the other request of a mismatch).
  db::IdempotencyKeyRow row;
  bool inserted = false;  // proceed on a key this call created (`started`)
};

class KeyEngine {
 public:
  KeyEngine(const core::Clock& clock, core::Millis lock_timeout_ms)
      : clock_(clock), lock_timeout_ms_(lock_timeout_ms) {}

  // What an existing key answers `ref` at `now` (never kProceed for a
  // finished key).
  [[nodiscard]] KeyAnswer answer(const db::IdempotencyKeyRow& row, const KeyRequest& ref,
                                 core::Millis now) const;

  // The fast path, on a read connection: nullopt when the key is absent or
  // the request may proceed (which only a write transaction can decide).
  [[nodiscard]] std::optional<OpenedKey> look(db::Conn& conn, const KeyRequest& ref) const;

  // Opens `ref` for `workflow` inside `tx`: insert-or-nothing, then lock.
  // A new key gets a gateway key when `with_gateway_key` (checkout).
  [[nodiscard]] OpenedKey open(db::Tx& tx, const KeyRequest& ref, const std::string& workflow,
                               bool with_gateway_key) const;

  // Takes the lock of key `id` when it is unfinished and its lock is free or
  // stale (the completer's way in); nullopt otherwise.
  [[nodiscard]] std::optional<db::IdempotencyKeyRow> take(db::Tx& tx, std::int64_t id) const;

  // Applies a phase's outcome to `row` inside the phase's transaction:
  // NoOp keeps the lock, RecoveryPoint moves the key (keeping the lock),
  // Response finishes it with the stored response and unlocks it. `row` is
  // updated to match.
  void apply(db::Tx& tx, db::IdempotencyKeyRow& row, const Outcome& outcome) const;

  // Releases the lock of key `id` in its own write, after a phase failed, so
  // that a retry need not wait for the lock timeout. If even that write
  // fails, the lock goes stale after the timeout and is taken over then.
  void unlock(db::Database& db, std::int64_t id, Attempts& attempts) const;

  const core::Clock& clock() const noexcept { return clock_; }
  core::Millis lock_timeout_ms() const noexcept { return lock_timeout_ms_; }

 private:
  const core::Clock& clock_;
  const core::Millis lock_timeout_ms_;
};

}  // namespace workflow
