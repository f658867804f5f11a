// The idempotency layer (API.md "Idempotency-Key"): every POST, PUT and
// DELETE goes through it, installed once with Router::set_write_layer. It is
// the HTTP side of the key engine (workflow/key_engine.h): header syntax,
// client scope, request fingerprint, the reply <-> stored-response
// conversion, and the metrics of what a key answered.
//
// For a request with an Idempotency-Key header:
// 1. The key must be 1-255 visible ASCII characters (0x21-0x7E), else 400
//    /problems/invalid-idempotency-key. Keys are scoped per client: by the
//    SHA-256 of the bearer token when `Authorization: Bearer` is sent, else
//    one anonymous scope.
// 2. Fast path, on a read connection, no write lock (KeyEngine::look): a
//    finished key with the same fingerprint (SHA-256 of method, request
//    target = path + query, and body) is replayed: stored status,
//    Content-Type, stored headers (Location, Retry-After) and body byte for
//    byte, plus `Idempotent-Replayed: true`. Another fingerprint -> 422
//    /problems/idempotency-key-mismatch. A key locked less than
//    --idempotency-lock-timeout ago -> 409 /problems/idempotency-key-in-use
//    with Retry-After.
// 3. Otherwise the handler runs with a WriteContext holding the key. Its
//    transact() is one workflow::atomic_phase: it opens the key inside the
//    IMMEDIATE transaction (insert-or-nothing, then lock; the fast path may
//    have raced), runs the phase and finishes the key with the reply in that
//    same transaction: business rows, audit rows, staged jobs and the stored
//    response commit together, and a concurrent request with the same key
//    then finds the replay. Checkout runs its phases on the same engine
//    (http/checkout_flow.h).
// - A handler that refuses before transact() (validation) stores nothing. A
//   phase that fails (its Status, or a storage failure: busy, full) rolls
//   back and stores nothing: the retry runs afresh.
// Without the header, the handler gets a WriteContext without a key.
#pragma once

#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/metrics.h"
#include "db/idempotency.h"
#include "http/http.h"
#include "http/router.h"
#include "workflow/key_engine.h"

namespace app {

using KeyRef = workflow::KeyRequest;  // scope, key, method, path, fingerprint

inline constexpr char kAnonymousScope[] = "anonymous";

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(const std::string& data);
// The fingerprint stored with a key: SHA-256 over method, target and body.
std::string request_fingerprint(const std::string& method, const std::string& target,
                                const std::string& body);
// "bearer:<sha256 of the token>" or "anonymous".
std::string client_scope(const httplib::Request& req);
bool valid_idempotency_key(const std::string& key);

// The stored form of a reply; the reply replayed from it (marked
// Idempotent-Replayed: true); the reply it stores, as the request that
// stored it answers (unmarked).
db::StoredResponse to_stored(const Reply& reply);
Reply replay(const db::StoredResponse& stored);
Reply from_stored(const db::StoredResponse& stored);

Reply idempotency_key_in_use();

// The reply for a key that answered by itself (replay, mismatch 422, in use
// 409) to the request `ref`.
Reply reply_for(const workflow::OpenedKey& key, const KeyRef& ref);

// Metrics (one source: the core::metrics registry). The layer counts each
// keyed request once, from what its key answered: a replay increments
// core::metrics::idempotent_replays(), a mismatch or in-use increments
// idempotency_conflicts(). Phases do not count: in group mode a phase may
// run again after a lost transaction, and on the writer thread.
// outcome: "mismatch" or "in_use".
core::metrics::Counter& idempotency_conflicts(std::string_view outcome);
void count_key_answer(workflow::KeyAnswer answer);

// The layer for Router::set_write_layer. `clock` must outlive the router.
Router::WriteLayer make_idempotency_layer(const core::Clock& clock, core::Millis lock_timeout_ms);

}  // namespace app
