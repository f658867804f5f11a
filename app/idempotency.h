// The idempotency layer (API.md "Idempotency-Key"): every POST, PUT and
// DELETE goes through it, installed once with Router::set_write_layer.
//
// For a request with an Idempotency-Key header:
// 1. The key must be 1-255 visible ASCII characters (0x21-0x7E), else 400
//    /problems/invalid-idempotency-key. Keys are scoped per client: by the
//    SHA-256 of the bearer token when `Authorization: Bearer` is sent, else
//    one anonymous scope.
// 2. Fast path, on a read connection, no write lock: a finished key with the
//    same fingerprint (SHA-256 of method, request target = path + query, and
//    body) is replayed: stored status, Content-Type, stored headers
//    (Location, Retry-After) and body byte for byte, plus
//    `Idempotent-Replayed: true`. Another fingerprint -> 422
//    /problems/idempotency-key-mismatch. A key locked less than
//    --idempotency-lock-timeout ago -> 409 /problems/idempotency-key-in-use
//    with Retry-After.
// 3. Otherwise the handler runs with an IdempotentWriteContext. Its
//    transact() re-checks the key inside the IMMEDIATE transaction (the fast
//    path may have raced), runs the phase and inserts the key, finished with
//    the reply, in that same transaction: business rows, audit rows, staged
//    jobs and the stored response commit together. Single-phase writes need
//    no in-flight lock row: IMMEDIATE serialises writers, so a concurrent
//    request with the same key waits for the lock and then finds the replay.
//    Multi-phase routes (checkout) use the key record's recovery points
//    directly (app/checkout_flow.h).
// - A handler that refuses before transact() (validation) stores nothing. A
//   phase answering 5xx, or a storage failure (busy, full), rolls back and
//   stores nothing: the retry runs afresh.
// Without the header, the handler gets a plain WriteContext.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "app/http.h"
#include "app/router.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "db/idempotency.h"

namespace app {

using KeyRef = db::NewIdempotencyKey;  // scope, key, method, path, fingerprint

inline constexpr char kAnonymousScope[] = "anonymous";

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(const std::string& data);
// The fingerprint stored with a key: SHA-256 over method, target and body.
std::string request_fingerprint(const std::string& method, const std::string& target,
                                const std::string& body);
// "bearer:<sha256 of the token>" or "anonymous".
std::string client_scope(const httplib::Request& req);
bool valid_idempotency_key(const std::string& key);

// The stored form of a reply, and the reply replayed from it.
db::StoredResponse to_stored(const Reply& reply);
Reply replay(const db::StoredResponse& stored);

Reply idempotency_key_in_use();

// What an existing key record answers for a request with `ref`: a mismatch
// (422), the replay, or in-use (409) while its lock is fresh; nullopt when
// the request may proceed (unfinished, lock free or stale).
std::optional<Reply> answer_existing(const db::IdempotencyKeyRow& row, const KeyRef& ref,
                                     core::Millis now, core::Millis lock_timeout_ms);

class IdempotentWriteContext final : public WriteContext {
 public:
  IdempotentWriteContext(db::Database& db, const httplib::Request& req, KeyRef key,
                         const core::Clock& clock, core::Millis lock_timeout_ms)
      : WriteContext(db, req),
        key_(std::move(key)),
        clock_(clock),
        lock_timeout_ms_(lock_timeout_ms) {}

  Reply transact(const Phase& phase) override;
  bool has_idempotency_key() const override { return true; }
  const KeyRef& key() const noexcept { return key_; }

 private:
  KeyRef key_;
  const core::Clock& clock_;
  core::Millis lock_timeout_ms_;
};

// The key of a request, when it sent one (null for a plain WriteContext).
const KeyRef* idempotency_key_of(const WriteContext& w);

// Metrics (one source: the core::metrics registry). The layer counts each
// keyed request once, from the reply it answers with: a replay increments
// core::metrics::idempotent_replays(), a 422 mismatch or 409 in-use
// increments idempotency_conflicts(). Phases do not count: in group mode a
// phase may run again after a lost transaction, and on the writer thread.
// outcome: "mismatch" or "in_use".
core::metrics::Counter& idempotency_conflicts(std::string_view outcome);
void count_key_answer(const Reply& reply);

// The layer for Router::set_write_layer. `clock` must outlive the router.
Router::WriteLayer make_idempotency_layer(const core::Clock& clock, core::Millis lock_timeout_ms);

}  // namespace app
