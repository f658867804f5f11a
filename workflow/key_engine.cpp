#include "workflow/key_engine.h"

#include <stdexcept>
#include <type_traits>

#include "workflow/atomic_phase.h"

namespace workflow {

const char* answer_name(KeyAnswer answer) noexcept {
  switch (answer) {
    case KeyAnswer::kProceed:
      return "proceed";
    case KeyAnswer::kReplay:
      return "replay";
    case KeyAnswer::kMismatch:
      return "mismatch";
    case KeyAnswer::kInUse:
      return "in_use";
  }
  return "proceed";
}

KeyAnswer KeyEngine::answer(const db::IdempotencyKeyRow& row, const KeyRequest& ref,
                            core::Millis now) const {
  if (row.fingerprint != ref.fingerprint) return KeyAnswer::kMismatch;
  if (row.response) return KeyAnswer::kReplay;
  if (row.locked_at && *row.locked_at > now - lock_timeout_ms_) return KeyAnswer::kInUse;
  return KeyAnswer::kProceed;  // unfinished, lock free or stale: may be taken over
}

std::optional<OpenedKey> KeyEngine::look(db::Conn& conn, const KeyRequest& ref) const {
  auto row = db::find_idempotency_key(conn, ref.scope, ref.key);
  if (!row) return std::nullopt;
  const KeyAnswer a = answer(*row, ref, clock_.now_ms());
  if (a == KeyAnswer::kProceed) return std::nullopt;
  return OpenedKey{a, std::move(*row), false};
}

OpenedKey KeyEngine::open(db::Tx& tx, const KeyRequest& ref, const std::string& workflow,
                          bool with_gateway_key) const {
  const core::Millis now = clock_.now_ms();
  if (auto inserted = db::insert_key_if_absent(tx, ref, workflow, with_gateway_key, now)) {
    return OpenedKey{KeyAnswer::kProceed, std::move(*inserted), true};
  }
  auto row = db::lock_idempotency_key(tx, ref.scope, ref.key);
  if (!row) {
    // Deleted between the two statements: only an engine without an
    // exclusive write transaction lets that happen. The insert lost to a
    // row that is gone; the caller's retry inserts it.
    throw std::runtime_error("idempotency key vanished while being opened");
  }
  const KeyAnswer a = answer(*row, ref, now);
  if (a == KeyAnswer::kProceed) {
    // Take the lock over; answer() just said it is free or stale.
    if (!db::lock_key(tx, row->id, now, now - lock_timeout_ms_)) {
      return OpenedKey{KeyAnswer::kInUse, std::move(*row), false};
    }
    row->locked_at = now;
    row->last_run_at = now;
  }
  return OpenedKey{a, std::move(*row), false};
}

std::optional<db::IdempotencyKeyRow> KeyEngine::take(db::Tx& tx, std::int64_t id) const {
  const core::Millis now = clock_.now_ms();
  if (!db::lock_key(tx, id, now, now - lock_timeout_ms_)) return std::nullopt;
  return db::find_idempotency_key_by_id(tx.conn(), id);
}

void KeyEngine::apply(db::Tx& tx, db::IdempotencyKeyRow& row, const Outcome& outcome) const {
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, RecoveryPoint>) {
          db::set_recovery_point(tx, row.id, o.name, o.order_id);
          row.recovery_point = o.name;
          if (o.order_id) row.order_id = o.order_id;
        } else if constexpr (std::is_same_v<T, Response>) {
          const core::Millis now = clock_.now_ms();
          db::finish_key(tx, row.id, o.stored, now);
          row.recovery_point = db::kPointFinished;
          row.locked_at.reset();
          row.response = o.stored;
          row.last_run_at = now;
        }
      },
      outcome);
}

void KeyEngine::unlock(db::Database& db, std::int64_t id, Attempts& attempts) const {
  (void)write(
      db,
      [&](db::Tx& tx) {
        db::unlock_key(tx, id);
        return core::Status::ok();
      },
      attempts);
}

}  // namespace workflow
