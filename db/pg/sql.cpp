// The PostgreSQL text of every named statement (db/sql.h). PostgreSQL's
// dialect: `$N` parameters sent as text and cast where the type is not
// plain from the context, jsonb for job arguments and errors, `= ANY($N::
// text[])` for lists, `FOR UPDATE [SKIP LOCKED]` where several nodes meet on
// one row (db/pg/driver.h says which guarantee each one keeps).
#include "db/pg/sql.h"

namespace db::pg {
namespace {

// ---- db/database.cpp ----

constexpr char kPing[] = "SELECT 1";

// ---- db/users.cpp ----

constexpr char kInsertUser[] =
    "INSERT INTO users (email, created_at) VALUES ($1, $2) "
    "ON CONFLICT (email) DO NOTHING RETURNING id, email, created_at";
constexpr char kFindUserByEmail[] = "SELECT id, email, created_at FROM users WHERE email = $1";
constexpr char kFindUser[] = "SELECT id, email, created_at FROM users WHERE id = $1";
constexpr char kInsertUserAction[] =
    "INSERT INTO user_actions (user_id, action, created_at) VALUES ($1, $2, $3)";
constexpr char kListUserActions[] =
    "SELECT id, user_id, action, created_at FROM user_actions WHERE user_id = $1 ORDER BY id";
constexpr char kCountUsers[] = "SELECT count(*) FROM users";

// ---- db/anagrams.cpp ----

constexpr char kInsertAnagramWord[] =
    "INSERT INTO anagram_words (word, key, created_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (word) DO NOTHING";
constexpr char kDeleteAnagramWord[] = "DELETE FROM anagram_words WHERE word = $1";
constexpr char kListAnagramGroup[] =
    "SELECT word FROM anagram_words WHERE key = $1 ORDER BY word COLLATE \"C\"";

// ---- db/products.cpp ----

constexpr char kInsertProduct[] =
    "INSERT INTO products (name, owner_email, state, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $4) "
    "RETURNING id, name, owner_email, state, created_at, updated_at";
constexpr char kTransitionProduct[] =
    "UPDATE products SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2 "
    "RETURNING id, name, owner_email, state, created_at, updated_at";
constexpr char kFindProduct[] =
    "SELECT id, name, owner_email, state, created_at, updated_at FROM products WHERE id = $1";
constexpr char kInsertProductMeta[] =
    "INSERT INTO product_meta (product_id, note, created_at) VALUES ($1, $2, $3) "
    "RETURNING id, product_id, note, created_at";
constexpr char kFindProductMeta[] =
    "SELECT id, product_id, note, created_at FROM product_meta WHERE id = $1";
constexpr char kFindProductMetaByProduct[] =
    "SELECT id, product_id, note, created_at FROM product_meta WHERE product_id = $1";
constexpr char kInsertProductStateChange[] =
    "INSERT INTO product_state_changes (product_id, from_state, to_state, created_at) "
    "VALUES ($1, $2, $3, $4) RETURNING id";
constexpr char kListProductStateChanges[] =
    "SELECT id, product_id, from_state, to_state, created_at FROM product_state_changes "
    "WHERE product_id = $1 ORDER BY id";

// ---- db/orders.cpp ----

constexpr char kInsertOrder[] =
    "INSERT INTO orders (email, phone, total_cents, payment_token, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
constexpr char kInsertItem[] =
    "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)";
constexpr char kInsertAction[] =
    "INSERT INTO order_actions (order_id, action, detail, created_at) VALUES ($1, $2, $3, $4)";
constexpr char kMarkPaid[] =
    "UPDATE orders SET state = 'paid', charge_id = $2, updated_at = $3 "
    "WHERE id = $1 AND state = 'pending'";
constexpr char kMarkPaymentFailed[] =
    "UPDATE orders SET state = 'payment_failed', updated_at = $2 "
    "WHERE id = $1 AND state = 'pending'";
constexpr char kMarkReadyToShip[] =
    "UPDATE orders SET state = 'ready_to_ship', updated_at = $2 WHERE id = $1 AND state = 'paid'";
constexpr char kFindOrder[] =
    "SELECT id, state, email, phone, total_cents, payment_token, charge_id, created_at, "
    "updated_at FROM orders WHERE id = $1";
constexpr char kFindOrderPaidBy[] = "SELECT id FROM orders WHERE charge_id = $1 LIMIT 1";
constexpr char kListItems[] =
    "SELECT sku, quantity, unit_price_cents FROM order_items WHERE order_id = $1 ORDER BY id";

// ---- db/idempotency.cpp ----

#define KEY_COLUMNS                                                                       \
  "id, scope, key, method, path, fingerprint, recovery_point, locked_at, order_id, "      \
  "response_status, response_content_type, response_headers, response_body, created_at, " \
  "last_run_at, gateway_key, workflow"
constexpr char kFindKey[] =
    "SELECT " KEY_COLUMNS " FROM idempotency_keys WHERE scope = $1 AND key = $2";
constexpr char kFindKeyById[] = "SELECT " KEY_COLUMNS " FROM idempotency_keys WHERE id = $1";
// The row insert-or-nothing found, locked for the rest of the transaction:
// a request for the same key on another node waits here until this one
// commits, then reads what it left.
constexpr char kLockKeyRow[] =
    "SELECT " KEY_COLUMNS " FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE";
// The gateway key as SQLite's (db/sqlite/sql.cpp says why): the client's
// reference, " ac_", then 32 hex digits of gen_random_uuid() (122 random
// bits from PostgreSQL's strong random source).
#define INSERT_KEY                                                                          \
  "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, "   \
  "locked_at, created_at, last_run_at, gateway_key, workflow) VALUES ($1, $2, $3, $4, $5, " \
  "'started', $6, $6, $6, CASE WHEN $8::int <> 0 THEN CASE $1::text WHEN 'anonymous' THEN " \
  "$2::text ELSE $1::text || ' ' || $2::text END || ' ac_' || "                             \
  "replace(gen_random_uuid()::text, '-', '') END, $7) "
constexpr char kInsertKeyIfAbsent[] =
    INSERT_KEY "ON CONFLICT (scope, key) DO NOTHING RETURNING " KEY_COLUMNS;
constexpr char kInsertStarted[] = INSERT_KEY "RETURNING " KEY_COLUMNS;
#undef INSERT_KEY
constexpr char kSetRecoveryPoint[] =
    "UPDATE idempotency_keys SET recovery_point = $2, order_id = coalesce($3::bigint, order_id) "
    "WHERE id = $1 AND recovery_point <> 'finished'";
constexpr char kFinishKey[] =
    "UPDATE idempotency_keys SET recovery_point = 'finished', locked_at = NULL, "
    "response_status = $2, response_content_type = $3, response_headers = $4, "
    "response_body = $5, last_run_at = $6 WHERE id = $1 AND recovery_point <> 'finished'";
constexpr char kLockKey[] =
    "UPDATE idempotency_keys SET locked_at = $2, last_run_at = $2 "
    "WHERE id = $1 AND recovery_point <> 'finished' AND (locked_at IS NULL OR locked_at < $3)";
constexpr char kUnlockKey[] = "UPDATE idempotency_keys SET locked_at = NULL WHERE id = $1";
constexpr char kReleaseStaleLocks[] =
    "UPDATE idempotency_keys SET locked_at = NULL WHERE locked_at < $1";
constexpr char kListAbandoned[] =
    "SELECT " KEY_COLUMNS
    " FROM idempotency_keys WHERE recovery_point <> 'finished' "
    "AND last_run_at < $1 AND (locked_at IS NULL OR locked_at < $2) AND workflow = $4 "
    "ORDER BY last_run_at, id LIMIT $3";
// SKIP LOCKED: a key some request holds right now is not reaped under it.
constexpr char kReapKeys[] =
    "DELETE FROM idempotency_keys WHERE id IN "
    "(SELECT id FROM idempotency_keys "
    "WHERE recovery_point = 'finished' AND locked_at IS NULL AND last_run_at < $1 "
    "ORDER BY last_run_at LIMIT $2 FOR UPDATE SKIP LOCKED)";
#undef KEY_COLUMNS

// ---- db/jobs.cpp ----

#define AC_JOB_COLUMNS                                                                 \
  "id, kind, state, args::text, attempt, max_attempts, priority, run_at, created_at, " \
  "attempted_at, lease_until, finished_at, errors::text, unique_key, timeout_ms, serial_key"
#define AC_JOB_COLUMNS_OF(t)                                                                \
  t ".id, " t ".kind, " t ".state, " t ".args::text, " t ".attempt, " t ".max_attempts, " t \
    ".priority, " t ".run_at, " t ".created_at, " t ".attempted_at, " t ".lease_until, " t  \
    ".finished_at, " t ".errors::text, " t ".unique_key, " t ".timeout_ms, " t ".serial_key"
#define AC_RUNNABLE                                                                        \
  "j.state IN ('available','retryable') AND j.run_at <= $1 AND (j.serial_key IS NULL OR "  \
  "NOT EXISTS (SELECT 1 FROM jobs AS e WHERE e.serial_key = j.serial_key AND e.id < j.id " \
  "AND e.state IN ('available','running','retryable')))"
// One error entry appended to `errors`.
#define AC_APPEND_ERROR(attempt, at, message)                                   \
  "errors = errors || jsonb_build_array(jsonb_build_object('attempt', " attempt \
  ", "                                                                          \
  "'at', " at ", 'message', " message "))"
constexpr char kUpsertJobKind[] =
    "INSERT INTO job_kinds (kind, max_attempts, timeout_ms) VALUES ($1, $2, $3) "
    "ON CONFLICT (kind) DO UPDATE SET max_attempts = excluded.max_attempts, "
    "timeout_ms = excluded.timeout_ms";
// A job with a serial key takes a transaction advisory lock on the key
// (namespace 7411, the key's hash) before its id is drawn: stagers of one key
// commit in id order, so a job never becomes visible, and runnable, before
// a lower-id job of its key that is still to commit (ids are handed out
// before commit, and two writers, of one node or two, commit in any order).
// The lock is taken in the materialized CTE, which the INSERT reads before
// it evaluates the id's default; a null key takes none (the function is
// strict). Held until COMMIT or ROLLBACK.
constexpr char kStageJob[] =
    "WITH serial_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(7411, hashtext($9::text))) "
    "INSERT INTO jobs (kind, args, max_attempts, priority, run_at, created_at, unique_key, "
    "timeout_ms, serial_key) "
    "SELECT $1::text, $2::jsonb, "
    "coalesce($3::int, (SELECT max_attempts FROM job_kinds WHERE kind = $1::text), 5), $4::int, "
    "$5::bigint, $6::bigint, $7::text, "
    "coalesce($8::bigint, (SELECT timeout_ms FROM job_kinds WHERE kind = $1::text)), $9::text "
    "FROM serial_lock "
    "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL "
    "AND state NOT IN ('completed','discarded','cancelled') DO NOTHING RETURNING id";
constexpr char kAnyRunnable[] = "SELECT EXISTS (SELECT 1 FROM jobs AS j WHERE " AC_RUNNABLE ")";
constexpr char kAnyRunnableOfKinds[] =
    "SELECT EXISTS (SELECT 1 FROM jobs AS j WHERE " AC_RUNNABLE " AND j.kind = ANY($2::text[]))";
// One statement: the CTE picks the runnable rows in claim order and locks
// them, skipping rows another node is claiming right now (never an id
// cursor: ids are handed out before their transaction commits).
constexpr char kClaimJobs[] =
    "WITH picked AS (SELECT j.id FROM jobs AS j WHERE " AC_RUNNABLE
    " ORDER BY j.priority, j.run_at, j.id LIMIT $3 FOR UPDATE OF j SKIP LOCKED) "
    "UPDATE jobs AS u SET state = 'running', attempt = u.attempt + 1, attempted_at = $1, "
    "lease_until = $2 FROM picked WHERE u.id = picked.id "
    "RETURNING " AC_JOB_COLUMNS_OF("u");
constexpr char kClaimJobsOfKinds[] =
    "WITH picked AS (SELECT j.id FROM jobs AS j WHERE " AC_RUNNABLE
    " AND j.kind = ANY($4::text[])"
    " ORDER BY j.priority, j.run_at, j.id LIMIT $3 FOR UPDATE OF j SKIP LOCKED) "
    "UPDATE jobs AS u SET state = 'running', attempt = u.attempt + 1, attempted_at = $1, "
    "lease_until = $2 FROM picked WHERE u.id = picked.id "
    "RETURNING " AC_JOB_COLUMNS_OF("u");
// Unclaimed (apply-only) jobs are read, run and finished inside one write
// transaction: their rows stay locked until it ends, and a second node
// skips them, so no job is applied twice.
constexpr char kRunnableOfKinds[] = "SELECT " AC_JOB_COLUMNS_OF(
    "j") " FROM jobs AS j WHERE " AC_RUNNABLE
         " AND j.kind = ANY($2::text[]) "
         "ORDER BY j.priority, j.run_at, j.id LIMIT $3 FOR UPDATE OF j SKIP LOCKED";
constexpr char kCompleteUnclaimed[] =
    "UPDATE jobs SET state = 'completed', attempt = $2, attempted_at = $3, finished_at = $3 "
    "WHERE id = $1 AND state IN ('available','retryable') AND attempt = $2::int - 1";
// $1: a JSON object {"<id>": attempt, ...} (db::complete_unclaimed_jobs).
constexpr char kCompleteUnclaimedMany[] =
    "UPDATE jobs AS j SET state = 'completed', attempt = d.attempt, attempted_at = $2, "
    "finished_at = $2 FROM (SELECT key::bigint AS id, value::int AS attempt "
    "FROM jsonb_each_text($1::jsonb)) AS d "
    "WHERE j.id = d.id AND j.state IN ('available','retryable') AND j.attempt = d.attempt - 1 "
    "RETURNING j.id";
constexpr char kFailUnclaimed[] =
    "UPDATE jobs SET attempt = $2, attempted_at = $4, "
    "state = CASE WHEN $6::int <> 0 THEN 'discarded' ELSE 'retryable' END, "
    "run_at = CASE WHEN $6::int <> 0 THEN run_at ELSE $5::bigint END, "
    "finished_at = CASE WHEN $6::int <> 0 THEN $4::bigint ELSE NULL END, " AC_APPEND_ERROR(
        "$2::int", "$4::bigint",
        "$3::text") " WHERE id = $1 AND state IN ('available','retryable') AND attempt = $2::int "
                    "- 1";
constexpr char kCompleteJob[] =
    "UPDATE jobs SET state = 'completed', finished_at = $3, lease_until = NULL "
    "WHERE id = $1 AND state = 'running' AND attempt = $2";
// A row another transaction holds locked is skipped, not waited for: that is
// this node's other writer completing or failing the job (or a rescuer after
// the lease expired), and a heartbeat that waited for it could deadlock with
// that writer's batch. The next heartbeat, a third of a lease later, renews
// a job whose completion rolled back.
constexpr char kHeartbeatJob[] =
    "UPDATE jobs SET lease_until = $3 WHERE id = (SELECT id FROM jobs WHERE id = $1 "
    "AND state = 'running' AND attempt = $2 FOR UPDATE SKIP LOCKED)";
constexpr char kReleaseJob[] =
    "UPDATE jobs SET state = CASE WHEN attempt > 1 THEN 'retryable' ELSE 'available' END, "
    "attempt = attempt - 1, lease_until = NULL "
    "WHERE id = $1 AND state = 'running' AND attempt = $2";
constexpr char kAnyExpiredLease[] =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_until < $1)";
constexpr char kAnyFinishedBefore[] =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1)";
constexpr char kDeleteFinishedBefore[] =
    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at IS NOT NULL "
    "AND finished_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";
constexpr char kFailJob[] =
    "UPDATE jobs SET state = CASE WHEN $6::int <> 0 THEN 'discarded' ELSE 'retryable' END, "
    "run_at = CASE WHEN $6::int <> 0 THEN run_at ELSE $5::bigint END, "
    "finished_at = CASE WHEN $6::int <> 0 THEN $4::bigint ELSE NULL END, lease_until = "
    "NULL, " AC_APPEND_ERROR("$2::int", "$4::bigint",
                             "$3::text") " WHERE id = $1 AND state = 'running' AND attempt = $2";
// Only leases that expired: a running job whose runner still heartbeats is
// never taken, whichever node runs the rescuer. A heartbeat that commits
// first makes the re-checked WHERE false for its row.
constexpr char kRescueJobs[] =
    "UPDATE jobs SET "
    "state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END, "
    "finished_at = CASE WHEN attempt >= max_attempts THEN $1::bigint ELSE NULL END, "
    "run_at = $1, lease_until = NULL, " AC_APPEND_ERROR(
        "attempt", "$1::bigint",
        "'lease expired: the runner stopped before finishing this attempt'") " WHERE state = "
                                                                             "'running' AND "
                                                                             "lease_until < $2";
constexpr char kRetryJob[] =
    "UPDATE jobs SET state = 'available', run_at = $2, finished_at = NULL, lease_until = NULL, "
    "max_attempts = greatest(max_attempts, attempt + 1) "
    "WHERE id = $1 AND state IN ('discarded','cancelled') RETURNING " AC_JOB_COLUMNS;
constexpr char kCancelJob[] =
    "UPDATE jobs SET state = 'cancelled', finished_at = $2 "
    "WHERE id = $1 AND state IN ('available','retryable') RETURNING " AC_JOB_COLUMNS;
constexpr char kFindJob[] = "SELECT " AC_JOB_COLUMNS " FROM jobs WHERE id = $1";
constexpr char kListJobs[] = "SELECT " AC_JOB_COLUMNS
                             " FROM jobs WHERE ($1::text IS NULL OR state = $1::text) "
                             "AND ($2::text IS NULL OR kind = $2::text) ORDER BY id DESC LIMIT $3";
// Keyset pages of the dashboard's jobs view (db/jobs.cpp merges them):
// each walks an index downwards from the cursor and stops after the page.
constexpr char kListJobsPage[] =
    "SELECT " AC_JOB_COLUMNS " FROM jobs WHERE id < $1 ORDER BY id DESC LIMIT $2";
constexpr char kListJobsPageOfStateKind[] =
    "SELECT " AC_JOB_COLUMNS
    " FROM jobs WHERE state = $1 AND kind = $2 AND id < $3 ORDER BY id DESC LIMIT $4";
// The kinds with a job in state $1: a loose index scan (one seek per kind on
// jobs_by_state_kind), as PostgreSQL has no skip scan of its own.
constexpr char kJobKindsInState[] =
    "WITH RECURSIVE k(kind) AS ("
    "SELECT min(kind) FROM jobs WHERE state = $1 "
    "UNION ALL "
    "SELECT (SELECT min(kind) FROM jobs WHERE state = $1 AND kind > k.kind) FROM k "
    "WHERE k.kind IS NOT NULL) "
    "SELECT kind FROM k WHERE kind IS NOT NULL";
// Bulk retry (POST /jobs/retry): kRetryJob's transition from one state only.
#define AC_RETRY_SET                                                                           \
  "UPDATE jobs SET state = 'available', run_at = $3, finished_at = NULL, lease_until = NULL, " \
  "max_attempts = greatest(max_attempts, attempt + 1) "
constexpr char kRetryJobInState[] = AC_RETRY_SET "WHERE id = $1 AND state = $2";
constexpr char kRetryJobsInState[] =
    AC_RETRY_SET "WHERE state = $1::text AND ($2::text IS NULL OR kind = $2::text)";
#undef AC_RETRY_SET
#undef AC_JOB_COLUMNS
#undef AC_JOB_COLUMNS_OF
#undef AC_RUNNABLE
#undef AC_APPEND_ERROR

// ---- db/mailbox.cpp ----

constexpr char kDeliverMessage[] =
    "INSERT INTO mailbox (channel, recipient, subject, body, job_id, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id) DO NOTHING";
constexpr char kSameMessageOfJob[] =
    "SELECT channel = $1 AND recipient = $2 AND subject = $3 AND body = $4 FROM mailbox "
    "WHERE job_id = $5";
constexpr char kListMessages[] =
    "SELECT id, channel, recipient, subject, body, job_id, created_at FROM mailbox "
    "WHERE recipient = $1 ORDER BY id";
constexpr char kLatestMessages[] =
    "SELECT id, channel, recipient, subject, body, job_id, created_at FROM mailbox "
    "ORDER BY id DESC LIMIT $1";

// ---- db/stats.cpp ----

constexpr char kCountJobs[] =
    "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state "
    "ORDER BY kind COLLATE \"C\", state COLLATE \"C\"";
constexpr char kCountUserActions[] = "SELECT count(*) FROM user_actions";
constexpr char kCountMessages[] = "SELECT count(*) FROM mailbox";
constexpr char kLatestUserActions[] =
    "SELECT a.id, a.user_id, u.email, a.action, a.created_at FROM user_actions a "
    "JOIN users u ON u.id = a.user_id ORDER BY a.id DESC LIMIT $1";

}  // namespace

bool claims_in_index_order(Sql name) noexcept {
  return name == Sql::kClaimJobs || name == Sql::kClaimJobsOfKinds || name == Sql::kRunnableOfKinds;
}

const char* sql_text(Sql name) noexcept {
  switch (name) {
    case Sql::kFindKey:
      return kFindKey;
    case Sql::kFindKeyById:
      return kFindKeyById;
    case Sql::kLockKeyRow:
      return kLockKeyRow;
    case Sql::kInsertKeyIfAbsent:
      return kInsertKeyIfAbsent;
    case Sql::kInsertStarted:
      return kInsertStarted;
    case Sql::kSetRecoveryPoint:
      return kSetRecoveryPoint;
    case Sql::kFinishKey:
      return kFinishKey;
    case Sql::kLockKey:
      return kLockKey;
    case Sql::kUnlockKey:
      return kUnlockKey;
    case Sql::kReleaseStaleLocks:
      return kReleaseStaleLocks;
    case Sql::kListAbandoned:
      return kListAbandoned;
    case Sql::kReapKeys:
      return kReapKeys;
    case Sql::kPing:
      return kPing;
    case Sql::kInsertUser:
      return kInsertUser;
    case Sql::kFindUserByEmail:
      return kFindUserByEmail;
    case Sql::kFindUser:
      return kFindUser;
    case Sql::kInsertUserAction:
      return kInsertUserAction;
    case Sql::kListUserActions:
      return kListUserActions;
    case Sql::kCountUsers:
      return kCountUsers;
    case Sql::kInsertAnagramWord:
      return kInsertAnagramWord;
    case Sql::kDeleteAnagramWord:
      return kDeleteAnagramWord;
    case Sql::kListAnagramGroup:
      return kListAnagramGroup;
    case Sql::kInsertProduct:
      return kInsertProduct;
    case Sql::kTransitionProduct:
      return kTransitionProduct;
    case Sql::kFindProduct:
      return kFindProduct;
    case Sql::kInsertProductMeta:
      return kInsertProductMeta;
    case Sql::kFindProductMeta:
      return kFindProductMeta;
    case Sql::kFindProductMetaByProduct:
      return kFindProductMetaByProduct;
    case Sql::kInsertProductStateChange:
      return kInsertProductStateChange;
    case Sql::kListProductStateChanges:
      return kListProductStateChanges;
    case Sql::kInsertOrder:
      return kInsertOrder;
    case Sql::kInsertItem:
      return kInsertItem;
    case Sql::kInsertAction:
      return kInsertAction;
    case Sql::kMarkPaid:
      return kMarkPaid;
    case Sql::kMarkPaymentFailed:
      return kMarkPaymentFailed;
    case Sql::kMarkReadyToShip:
      return kMarkReadyToShip;
    case Sql::kFindOrder:
      return kFindOrder;
    case Sql::kFindOrderPaidBy:
      return kFindOrderPaidBy;
    case Sql::kListItems:
      return kListItems;
    case Sql::kUpsertJobKind:
      return kUpsertJobKind;
    case Sql::kStageJob:
      return kStageJob;
    case Sql::kAnyRunnable:
      return kAnyRunnable;
    case Sql::kAnyRunnableOfKinds:
      return kAnyRunnableOfKinds;
    case Sql::kClaimJobs:
      return kClaimJobs;
    case Sql::kClaimJobsOfKinds:
      return kClaimJobsOfKinds;
    case Sql::kRunnableOfKinds:
      return kRunnableOfKinds;
    case Sql::kCompleteUnclaimed:
      return kCompleteUnclaimed;
    case Sql::kCompleteUnclaimedMany:
      return kCompleteUnclaimedMany;
    case Sql::kFailUnclaimed:
      return kFailUnclaimed;
    case Sql::kCompleteJob:
      return kCompleteJob;
    case Sql::kHeartbeatJob:
      return kHeartbeatJob;
    case Sql::kReleaseJob:
      return kReleaseJob;
    case Sql::kAnyExpiredLease:
      return kAnyExpiredLease;
    case Sql::kAnyFinishedBefore:
      return kAnyFinishedBefore;
    case Sql::kDeleteFinishedBefore:
      return kDeleteFinishedBefore;
    case Sql::kFailJob:
      return kFailJob;
    case Sql::kRescueJobs:
      return kRescueJobs;
    case Sql::kRetryJob:
      return kRetryJob;
    case Sql::kCancelJob:
      return kCancelJob;
    case Sql::kFindJob:
      return kFindJob;
    case Sql::kListJobs:
      return kListJobs;
    case Sql::kListJobsPage:
      return kListJobsPage;
    case Sql::kListJobsPageOfStateKind:
      return kListJobsPageOfStateKind;
    case Sql::kJobKindsInState:
      return kJobKindsInState;
    case Sql::kRetryJobInState:
      return kRetryJobInState;
    case Sql::kRetryJobsInState:
      return kRetryJobsInState;
    case Sql::kDeliverMessage:
      return kDeliverMessage;
    case Sql::kSameMessageOfJob:
      return kSameMessageOfJob;
    case Sql::kListMessages:
      return kListMessages;
    case Sql::kLatestMessages:
      return kLatestMessages;
    case Sql::kCountJobs:
      return kCountJobs;
    case Sql::kCountUserActions:
      return kCountUserActions;
    case Sql::kCountMessages:
      return kCountMessages;
    case Sql::kLatestUserActions:
      return kLatestUserActions;
  }
  return nullptr;
}

}  // namespace db::pg
