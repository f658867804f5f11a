#include "workflow/atomic_phase.h"

#include <type_traits>

namespace workflow {

core::Status write(db::Database& db, const std::function<core::Status(db::Tx&)>& phase,
                   Attempts& attempts) {
  db::TxStats stats;
  core::Status st = db.write(phase, &stats);
  attempts.transactions += stats.attempts;
  return st;
}

namespace {

// The key of one atomic phase, found inside its transaction as `source`
// says: nullopt for NoKey; an answer other than proceed ends the phase
// before it runs.
core::Result<std::optional<OpenedKey>> find_key(db::Tx& tx, const KeyEngine& keys,
                                                const KeySource& source) {
  if (const auto* open = std::get_if<OpenKey>(&source)) {
    return std::optional<OpenedKey>(
        keys.open(tx, open->request, open->workflow, open->with_gateway_key));
  }
  if (const auto* take = std::get_if<TakeKey>(&source)) {
    auto row = keys.take(tx, take->id);
    if (!row) return std::optional<OpenedKey>(OpenedKey{KeyAnswer::kInUse, {}, false});
    return std::optional<OpenedKey>(OpenedKey{KeyAnswer::kProceed, std::move(*row), false});
  }
  if (const auto* held = std::get_if<HeldKey>(&source)) {
    auto row = db::find_idempotency_key_by_id(tx.conn(), held->id);
    if (!row) return core::Status::not_found("the idempotency key was reaped mid-workflow");
    // Finished meanwhile by a stale-lock takeover: answer what it stored.
    const KeyAnswer a = row->response ? KeyAnswer::kReplay : KeyAnswer::kProceed;
    return std::optional<OpenedKey>(OpenedKey{a, std::move(*row), false});
  }
  return std::optional<OpenedKey>();
}

}  // namespace

core::Result<PhaseResult> atomic_phase(db::Database& db, const KeyEngine* keys,
                                       const KeySource& source, const Phase& phase,
                                       Attempts& attempts) {
  if (!std::holds_alternative<NoKey>(source) && keys == nullptr) {
    return core::Status::internal("atomic_phase: a keyed phase needs the key engine");
  }
  PhaseResult result;
  core::Status st = write(
      db,
      [&](db::Tx& tx) -> core::Status {
        result = PhaseResult{};  // group commit may run this again
        std::optional<OpenedKey> key;
        if (keys != nullptr) {
          auto found = find_key(tx, *keys, source);
          if (!found) return found.status();
          key = std::move(*found);
        }
        if (key && key->answer != KeyAnswer::kProceed) {
          result.answer = key->answer;  // nothing was written
          result.key = std::move(key);
          return core::Status::ok();
        }
        auto outcome = phase(tx, key ? &*key : nullptr);
        if (!outcome) return outcome.status();  // rolls back the phase and the key with it
        if (key) keys->apply(tx, key->row, *outcome);
        result.outcome = std::move(*outcome);
        result.key = std::move(key);
        return core::Status::ok();
      },
      attempts);
  if (!st) {
    // A lock taken in this transaction rolled back with it; one held from
    // an earlier phase is released now.
    if (const auto* held = std::get_if<HeldKey>(&source)) keys->unlock(db, held->id, attempts);
    return st;
  }
  return result;
}

}  // namespace workflow
