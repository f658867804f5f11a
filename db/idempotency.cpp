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
  return r;
}

void bind_key(Stmt& q, const NewIdempotencyKey& k) {
  q.bind(1, k.scope);
  q.bind(2, k.key);
  q.bind(3, k.method);
  q.bind(4, k.path);
  q.bind(5, k.fingerprint);
}

}  // namespace

std::optional<IdempotencyKeyRow> find_idempotency_key(Conn& conn, const std::string& scope,
                                                      const std::string& key) {
  auto q = conn.query(Sql::kFindKey);
  q.bind(1, scope);
  q.bind(2, key);
  if (!q.step()) return std::nullopt;
  return key_from(q);
}

std::optional<IdempotencyKeyRow> find_idempotency_key_by_id(Conn& conn, std::int64_t id) {
  auto q = conn.query(Sql::kFindKeyById);
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return key_from(q);
}

IdempotencyKeyRow insert_started_key(Tx& tx, const NewIdempotencyKey& key, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertStarted);
  bind_key(q, key);
  q.bind(6, static_cast<std::int64_t>(now));
  q.step();
  IdempotencyKeyRow row = key_from(q);
  q.step();  // to SQLITE_DONE: the RETURNING statement is finished
  return row;
}

void insert_finished_key(Tx& tx, const NewIdempotencyKey& key, const StoredResponse& response,
                         core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertFinished);
  bind_key(q, key);
  q.bind(6, response.status);
  q.bind(7, response.content_type);
  q.bind(8, response.headers_json);
  q.bind(9, response.body);
  q.bind(10, static_cast<std::int64_t>(now));
  q.exec();
}

void set_recovery_point(Tx& tx, std::int64_t id, const std::string& point,
                        std::optional<std::int64_t> order_id) {
  auto q = tx.conn().query(Sql::kSetRecoveryPoint);
  q.bind(1, id);
  q.bind(2, point);
  if (order_id) q.bind(3, *order_id);
  q.exec();
}

void finish_key(Tx& tx, std::int64_t id, const StoredResponse& response, core::Millis now) {
  auto q = tx.conn().query(Sql::kFinishKey);
  q.bind(1, id);
  q.bind(2, response.status);
  q.bind(3, response.content_type);
  q.bind(4, response.headers_json);
  q.bind(5, response.body);
  q.bind(6, static_cast<std::int64_t>(now));
  q.exec();
}

bool lock_key(Tx& tx, std::int64_t id, core::Millis now, core::Millis stale_before) {
  auto q = tx.conn().query(Sql::kLockKey);
  q.bind(1, id);
  q.bind(2, static_cast<std::int64_t>(now));
  q.bind(3, static_cast<std::int64_t>(stale_before));
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

std::vector<IdempotencyKeyRow> list_abandoned_keys(Conn& conn, core::Millis idle_before,
                                                   core::Millis stale_before, int limit) {
  auto q = conn.query(Sql::kListAbandoned);
  q.bind(1, static_cast<std::int64_t>(idle_before));
  q.bind(2, static_cast<std::int64_t>(stale_before));
  q.bind(3, limit);
  std::vector<IdempotencyKeyRow> out;
  while (q.step()) out.push_back(key_from(q));
  return out;
}

int reap_keys(Tx& tx, core::Millis finished_before, int limit) {
  auto q = tx.conn().query(Sql::kReapKeys);
  q.bind(1, static_cast<std::int64_t>(finished_before));
  q.bind(2, limit);
  return q.exec();
}

}  // namespace db
