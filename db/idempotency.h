// Idempotency keys: one row per (client scope, key) with the request's
// fingerprint, its recovery point, an in-flight lock and, once finished, the
// stored response (API.md "Idempotency-Key"; the table is in migration 3).
//
// Recovery points: `started` -> `order_created` -> `finished` (checkout), or
// `started` -> `finished` inside one transaction (every single-phase write),
// so a single-phase key is never seen unfinished. A row is `locked`
// (locked_at set) while a request or the completer works on it; a lock older
// than the lock timeout may be taken over. Each row names its workflow
// (workflow/key_engine.h; migration 6): the completer resumes one workflow's
// keys by that name. The vocabulary of outcomes lives in workflow/; these are
// the statements.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

inline constexpr char kPointStarted[] = "started";
inline constexpr char kPointOrderCreated[] = "order_created";
inline constexpr char kPointFinished[] = "finished";

// What is replayed for a finished key: status, content type, the headers that
// matter (JSON array of [name, value]) and the body, byte for byte.
struct StoredResponse {
  int status = 0;
  std::string content_type;
  std::string headers_json = "[]";
  std::string body;
};

struct IdempotencyKeyRow {
  std::int64_t id = 0;
  std::string scope;
  std::string key;
  std::string method;
  std::string path;
  std::string fingerprint;
  std::string recovery_point;
  std::optional<core::Millis> locked_at;
  std::optional<std::int64_t> order_id;
  std::optional<StoredResponse> response;  // set exactly when finished
  core::Millis created_at = 0;
  core::Millis last_run_at = 0;  // when last locked, or when finished
  // The idempotency key checkout sends to the payment gateway: random, set
  // when the key is inserted `started`, so it names this one operation of
  // ours for ever (never the client's string, which may come back as a new
  // request once the row is reaped). Keys unfinished at the upgrade to
  // schema 5 keep the key they were charged under. Unset for single-phase
  // keys.
  std::optional<std::string> gateway_key;
  std::string workflow;  // "checkout" or "single_phase" (workflow/outcome.h)
};

struct NewIdempotencyKey {
  std::string scope;
  std::string key;
  std::string method;
  std::string path;
  std::string fingerprint;
};

std::optional<IdempotencyKeyRow> find_idempotency_key(Conn& conn, const std::string& scope,
                                                      const std::string& key);
std::optional<IdempotencyKeyRow> find_idempotency_key_by_id(Conn& conn, std::int64_t id);

// Insert-or-nothing, the first half of opening a key: inserts `key` for
// `workflow` at `started`, locked at `now` (with a new gateway_key when
// `with_gateway_key`), or does nothing when (scope, key) exists. Returns the
// row it inserted, nullopt when it did nothing. Correct without a single
// writer: the UNIQUE (scope, key) decides, not a look-up before.
std::optional<IdempotencyKeyRow> insert_key_if_absent(Tx& tx, const NewIdempotencyKey& key,
                                                      const std::string& workflow,
                                                      bool with_gateway_key, core::Millis now);
// The second half: the row of (scope, key), locked for the rest of `tx`
// ("lock key": SELECT ... FOR UPDATE on an engine with row locks; SQLite's
// write transaction is already exclusive). nullopt when it does not exist.
std::optional<IdempotencyKeyRow> lock_idempotency_key(Tx& tx, const std::string& scope,
                                                      const std::string& key);
// Inserts a checkout key at `started`, locked at `now`, with a new
// gateway_key; throws (kConflict) when the (scope, key) exists. Tests use it
// to stage a key in flight; the key engine opens keys with
// insert_key_if_absent.
IdempotencyKeyRow insert_started_key(Tx& tx, const NewIdempotencyKey& key, core::Millis now);

// Moves an unfinished key to `point` (keeping its lock), recording the order.
void set_recovery_point(Tx& tx, std::int64_t id, const std::string& point,
                        std::optional<std::int64_t> order_id);
// unfinished -> finished with `response`; unlocks.
void finish_key(Tx& tx, std::int64_t id, const StoredResponse& response, core::Millis now);

// Takes the lock of an unfinished key that is unlocked or whose lock is older
// than `stale_before`. False when it is finished or locked by someone alive.
bool lock_key(Tx& tx, std::int64_t id, core::Millis now, core::Millis stale_before);
void unlock_key(Tx& tx, std::int64_t id);
// Unlocks the keys whose lock is older than `stale_before` (now minus the
// lock timeout): the locks lock_key would take over anyway. Never every lock:
// another live process may hold the others.
int release_stale_key_locks(Tx& tx, core::Millis stale_before);

// Unfinished keys of `workflow` untouched since `idle_before` whose lock is
// free or older than `stale_before`, oldest first.
std::vector<IdempotencyKeyRow> list_abandoned_keys(Conn& conn, const std::string& workflow,
                                                   core::Millis idle_before,
                                                   core::Millis stale_before, int limit);
// Deletes up to `limit` finished keys that finished before `finished_before`.
// Never an unfinished or locked key: that is a request's or the completer's
// work in progress. Business rows (orders, users) are not touched.
int reap_keys(Tx& tx, core::Millis finished_before, int limit);

}  // namespace db
