#include "db/idempotency.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

IdempotencyKeyRow key_from(const Row& s) {
  IdempotencyKeyRow r;
  r.id = s.int64(0);
  r.scope = s.text(1);
  r.key = s.text(2);
  r.method = s.text(3);
  r.path = s.text(4);
  r.fingerprint = s.text(5);
  r.recovery_point = s.text(6);
  if (!s.is_null(7)) r.locked_at = s.int64(7);
  if (!s.is_null(8)) r.order_id = s.int64(8);
  if (!s.is_null(9)) {
    r.response = StoredResponse{s.int32(9), s.text(10), s.text(11), s.text(12)};
  }
  r.created_at = s.int64(13);
  r.last_run_at = s.int64(14);
  if (!s.is_null(15)) r.gateway_key = s.text(15);
  r.workflow = s.text(16);
  return r;
}

void bind_key(Stmt& q, const NewIdempotencyKey& k) {
  q.bind_all(k.scope, k.key, k.method, k.path, k.fingerprint);
}

}  // namespace

std::optional<IdempotencyKeyRow> find_idempotency_key(Conn& conn, const std::string& scope,
                                                      const std::string& key) {
  auto q = conn.query(Sql::kFindKey);
  q.bind_all(scope, key);
  return q.one(key_from);
}

std::optional<IdempotencyKeyRow> find_idempotency_key_by_id(Conn& conn, std::int64_t id) {
  auto q = conn.query(Sql::kFindKeyById);
  q.bind(1, id);
  return q.one(key_from);
}

std::optional<IdempotencyKeyRow> insert_key_if_absent(Tx& tx, const NewIdempotencyKey& key,
                                                      const std::string& workflow,
                                                      bool with_gateway_key, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertKeyIfAbsent);
  bind_key(q, key);
  q.bind(6, static_cast<std::int64_t>(now));
  q.bind(7, workflow);
  q.bind(8, with_gateway_key ? 1 : 0);
  if (!q.step()) return std::nullopt;  // the key exists: nothing inserted
  IdempotencyKeyRow row = key_from(q);
  q.step();  // to SQLITE_DONE: the RETURNING statement is finished
  return row;
}

std::optional<IdempotencyKeyRow> lock_idempotency_key(Tx& tx, const std::string& scope,
                                                      const std::string& key) {
  auto q = tx.conn().query(Sql::kLockKeyRow);
  q.bind_all(scope, key);
  return q.one(key_from);
}

IdempotencyKeyRow insert_started_key(Tx& tx, const NewIdempotencyKey& key, core::Millis now) {
  static const std::string kCheckout = "checkout";  // workflow/outcome.h, workflow::kCheckout
  auto q = tx.conn().query(Sql::kInsertStarted);
  bind_key(q, key);
  q.bind(6, static_cast<std::int64_t>(now));
  q.bind(7, kCheckout);
  q.bind(8, 1);
  q.step();
  IdempotencyKeyRow row = key_from(q);
  q.step();  // to SQLITE_DONE: the RETURNING statement is finished
  return row;
}

void set_recovery_point(Tx& tx, std::int64_t id, const std::string& point,
                        std::optional<std::int64_t> order_id) {
  auto q = tx.conn().query(Sql::kSetRecoveryPoint);
  q.bind_all(id, point);
  if (order_id) q.bind(3, *order_id);
  q.exec();
}

void finish_key(Tx& tx, std::int64_t id, const StoredResponse& response, core::Millis now) {
  auto q = tx.conn().query(Sql::kFinishKey);
  q.bind_all(id, response.status, response.content_type, response.headers_json, response.body, now);
  q.exec();
}

bool lock_key(Tx& tx, std::int64_t id, core::Millis now, core::Millis stale_before) {
  auto q = tx.conn().query(Sql::kLockKey);
  q.bind_all(id, now, stale_before);
  return q.exec() == 1;
}

void unlock_key(Tx& tx, std::int64_t id) {
  auto q = tx.conn().query(Sql::kUnlockKey);
  q.bind(1, id);
  q.exec();
}

int release_stale_key_locks(Tx& tx, core::Millis stale_before) {
  auto q = tx.conn().query(Sql::kReleaseStaleLocks);
  q.bind(1, static_cast<std::int64_t>(stale_before));
  return q.exec();
}

std::vector<IdempotencyKeyRow> list_abandoned_keys(Conn& conn, const std::string& workflow,
                                                   core::Millis idle_before,
                                                   core::Millis stale_before, int limit) {
  auto q = conn.query(Sql::kListAbandoned);
  q.bind_all(idle_before, stale_before, limit, workflow);
  return q.all(key_from);
}

int reap_keys(Tx& tx, core::Millis finished_before, int limit) {
  auto q = tx.conn().query(Sql::kReapKeys);
  q.bind_all(finished_before, limit);
  return q.exec();
}

}  // namespace db
