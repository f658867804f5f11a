#include "db/idempotency.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

#define KEY_COLUMNS                                                                       \
  "id, scope, key, method, path, fingerprint, recovery_point, locked_at, order_id, "      \
  "response_status, response_content_type, response_headers, response_body, created_at, " \
  "last_run_at, gateway_key, workflow"

constexpr char kFindKey[] =
    "SELECT " KEY_COLUMNS " FROM idempotency_keys WHERE scope = ?1 AND key = ?2";
constexpr char kFindKeyById[] = "SELECT " KEY_COLUMNS " FROM idempotency_keys WHERE id = ?1";
// "lock key": the row insert-or-nothing found, re-read inside the write
// transaction that will run the phase. SQLite's write transaction is
// exclusive already; a PostgreSQL driver names this statement
// "... FOR UPDATE", so that two nodes opening one key serialise on the row.
constexpr char kLockKeyRow[] =
    "SELECT " KEY_COLUMNS " FROM idempotency_keys WHERE scope = ?1 AND key = ?2";
// gateway_key: the client's reference (its key, as API.md says checkout
// passes it on; "scope key" for a scoped client, as before) followed by
// " ac_" and 128 random bits of our own. The random part makes it name this
// one operation for ever: a reaped key's client string used again gets a new
// one, so an old charge can never answer a new operation. A client key holds
// no space, so no client key equals it, and the gateway can still count the
// charges made for a client key (GET /v1/charges?idempotency_key=<client key>,
// app/fake_gateway.cpp) by its prefix.
//
// Insert-or-nothing: the UNIQUE (scope, key) decides which of two writers
// inserts, so no look-up has to come first. ?7 is the workflow; ?8 non-zero
// gives the key a gateway key (checkout), zero leaves it NULL.
#define INSERT_KEY                                                                            \
  "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, "     \
  "locked_at, created_at, last_run_at, gateway_key, workflow) VALUES (?1, ?2, ?3, ?4, ?5, "   \
  "'started', ?6, ?6, ?6, CASE WHEN ?8 THEN CASE ?1 WHEN 'anonymous' THEN ?2 ELSE ?1 || ' ' " \
  "|| ?2 END || ' ac_' || lower(hex(randomblob(16))) END, ?7) "
constexpr char kInsertKeyIfAbsent[] =
    INSERT_KEY "ON CONFLICT (scope, key) DO NOTHING RETURNING " KEY_COLUMNS;
constexpr char kInsertStarted[] = INSERT_KEY "RETURNING " KEY_COLUMNS;
#undef INSERT_KEY
constexpr char kSetRecoveryPoint[] =
    "UPDATE idempotency_keys SET recovery_point = ?2, order_id = coalesce(?3, order_id) "
    "WHERE id = ?1 AND recovery_point <> 'finished'";
constexpr char kFinishKey[] =
    "UPDATE idempotency_keys SET recovery_point = 'finished', locked_at = NULL, "
    "response_status = ?2, response_content_type = ?3, response_headers = ?4, "
    "response_body = ?5, last_run_at = ?6 WHERE id = ?1 AND recovery_point <> 'finished'";
constexpr char kLockKey[] =
    "UPDATE idempotency_keys SET locked_at = ?2, last_run_at = ?2 "
    "WHERE id = ?1 AND recovery_point <> 'finished' AND (locked_at IS NULL OR locked_at < ?3)";
constexpr char kUnlockKey[] = "UPDATE idempotency_keys SET locked_at = NULL WHERE id = ?1";
constexpr char kReleaseStaleLocks[] =
    "UPDATE idempotency_keys SET locked_at = NULL WHERE locked_at < ?1";
constexpr char kListAbandoned[] =
    "SELECT " KEY_COLUMNS
    " FROM idempotency_keys WHERE recovery_point <> 'finished' "
    "AND last_run_at < ?1 AND (locked_at IS NULL OR locked_at < ?2) AND workflow = ?4 "
    "ORDER BY last_run_at, id LIMIT ?3";
// Finished (hence unlocked) keys only, by the time they finished: a key that
// is unfinished or locked is some request's or the completer's work in
// progress, and deleting it would let the same key start a second order.
constexpr char kReapKeys[] =
    "DELETE FROM idempotency_keys WHERE id IN "
    "(SELECT id FROM idempotency_keys INDEXED BY idempotency_keys_reapable "
    "WHERE recovery_point = 'finished' AND locked_at IS NULL AND last_run_at < ?1 "
    "ORDER BY last_run_at LIMIT ?2)";

#undef KEY_COLUMNS

IdempotencyKeyRow key_from(SQLite::Statement& s) {
  IdempotencyKeyRow r;
  r.id = s.getColumn(0).getInt64();
  r.scope = s.getColumn(1).getString();
  r.key = s.getColumn(2).getString();
  r.method = s.getColumn(3).getString();
  r.path = s.getColumn(4).getString();
  r.fingerprint = s.getColumn(5).getString();
  r.recovery_point = s.getColumn(6).getString();
  if (!s.getColumn(7).isNull()) r.locked_at = s.getColumn(7).getInt64();
  if (!s.getColumn(8).isNull()) r.order_id = s.getColumn(8).getInt64();
  if (!s.getColumn(9).isNull()) {
    r.response = StoredResponse{s.getColumn(9).getInt(), s.getColumn(10).getString(),
                                s.getColumn(11).getString(), s.getColumn(12).getString()};
  }
  r.created_at = s.getColumn(13).getInt64();
  r.last_run_at = s.getColumn(14).getInt64();
  if (!s.getColumn(15).isNull()) r.gateway_key = s.getColumn(15).getString();
  r.workflow = s.getColumn(16).getString();
  return r;
}

void bind_key(Conn::Query& q, const NewIdempotencyKey& k) {
  q->bindNoCopy(1, k.scope);
  q->bindNoCopy(2, k.key);
  q->bindNoCopy(3, k.method);
  q->bindNoCopy(4, k.path);
  q->bindNoCopy(5, k.fingerprint);
}

}  // namespace

std::optional<IdempotencyKeyRow> find_idempotency_key(Conn& conn, const std::string& scope,
                                                      const std::string& key) {
  auto q = conn.query(kFindKey);
  q->bindNoCopy(1, scope);
  q->bindNoCopy(2, key);
  if (!q->executeStep()) return std::nullopt;
  return key_from(*q);
}

std::optional<IdempotencyKeyRow> find_idempotency_key_by_id(Conn& conn, std::int64_t id) {
  auto q = conn.query(kFindKeyById);
  q->bind(1, id);
  if (!q->executeStep()) return std::nullopt;
  return key_from(*q);
}

std::optional<IdempotencyKeyRow> insert_key_if_absent(Tx& tx, const NewIdempotencyKey& key,
                                                      const std::string& workflow,
                                                      bool with_gateway_key, core::Millis now) {
  auto q = tx.conn().query(kInsertKeyIfAbsent);
  bind_key(q, key);
  q->bind(6, static_cast<std::int64_t>(now));
  q->bindNoCopy(7, workflow);
  q->bind(8, with_gateway_key ? 1 : 0);
  if (!q->executeStep()) return std::nullopt;  // the key exists: nothing inserted
  IdempotencyKeyRow row = key_from(*q);
  q->executeStep();  // to SQLITE_DONE: the RETURNING statement is finished
  return row;
}

std::optional<IdempotencyKeyRow> lock_idempotency_key(Tx& tx, const std::string& scope,
                                                      const std::string& key) {
  auto q = tx.conn().query(kLockKeyRow);
  q->bindNoCopy(1, scope);
  q->bindNoCopy(2, key);
  if (!q->executeStep()) return std::nullopt;
  return key_from(*q);
}

IdempotencyKeyRow insert_started_key(Tx& tx, const NewIdempotencyKey& key, core::Millis now) {
  static const std::string kCheckout = "checkout";  // workflow/outcome.h, workflow::kCheckout
  auto q = tx.conn().query(kInsertStarted);
  bind_key(q, key);
  q->bind(6, static_cast<std::int64_t>(now));
  q->bindNoCopy(7, kCheckout);
  q->bind(8, 1);
  q->executeStep();
  IdempotencyKeyRow row = key_from(*q);
  q->executeStep();  // to SQLITE_DONE: the RETURNING statement is finished
  return row;
}

void set_recovery_point(Tx& tx, std::int64_t id, const std::string& point,
                        std::optional<std::int64_t> order_id) {
  auto q = tx.conn().query(kSetRecoveryPoint);
  q->bind(1, id);
  q->bindNoCopy(2, point);
  if (order_id) q->bind(3, *order_id);
  q->exec();
}

void finish_key(Tx& tx, std::int64_t id, const StoredResponse& response, core::Millis now) {
  auto q = tx.conn().query(kFinishKey);
  q->bind(1, id);
  q->bind(2, response.status);
  q->bindNoCopy(3, response.content_type);
  q->bindNoCopy(4, response.headers_json);
  q->bindNoCopy(5, response.body);
  q->bind(6, static_cast<std::int64_t>(now));
  q->exec();
}

bool lock_key(Tx& tx, std::int64_t id, core::Millis now, core::Millis stale_before) {
  auto q = tx.conn().query(kLockKey);
  q->bind(1, id);
  q->bind(2, static_cast<std::int64_t>(now));
  q->bind(3, static_cast<std::int64_t>(stale_before));
  return q->exec() == 1;
}

void unlock_key(Tx& tx, std::int64_t id) {
  auto q = tx.conn().query(kUnlockKey);
  q->bind(1, id);
  q->exec();
}

int release_stale_key_locks(Tx& tx, core::Millis stale_before) {
  auto q = tx.conn().query(kReleaseStaleLocks);
  q->bind(1, static_cast<std::int64_t>(stale_before));
  return q->exec();
}

std::vector<IdempotencyKeyRow> list_abandoned_keys(Conn& conn, const std::string& workflow,
                                                   core::Millis idle_before,
                                                   core::Millis stale_before, int limit) {
  auto q = conn.query(kListAbandoned);
  q->bind(1, static_cast<std::int64_t>(idle_before));
  q->bind(2, static_cast<std::int64_t>(stale_before));
  q->bind(3, limit);
  q->bindNoCopy(4, workflow);
  std::vector<IdempotencyKeyRow> out;
  while (q->executeStep()) out.push_back(key_from(*q));
  return out;
}

int reap_keys(Tx& tx, core::Millis finished_before, int limit) {
  auto q = tx.conn().query(kReapKeys);
  q->bind(1, static_cast<std::int64_t>(finished_before));
  q->bind(2, limit);
  return q->exec();
}

}  // namespace db
