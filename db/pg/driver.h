// The PostgreSQL driver: db::Driver over libpq, for several nodes sharing
// one database (README "Running several nodes").
//
// - Target: a `postgresql://` or `postgres://` URL, read by libpq's own
//   conninfo rules (https://www.postgresql.org/docs/15/libpq-connect.html),
//   so `postgresql:///aftercommit?host=/run/postgresql` reaches a unix socket.
// - Connections: the writer and each reader are one libpq connection each.
//   Every named statement (db/sql.h) is prepared on the server on its first
//   use and kept for the connection's life. A connection that broke (server
//   restarted, network cut) is reopened at the start of its next
//   transaction, its statements prepared again: nothing needs a restart.
// - Errors are translated from SQLSTATE classes: 23xxx (integrity) ->
//   kConflict; 40001 (serialization), 40P01 (deadlock), 55P03 (lock not
//   available: lock_timeout ran out) -> kBusy, which db::Database retries up
//   to --max-attempts with jittered backoff; 53100 (disk full) ->
//   kStorageFull; 08xxx (connection), 57P0x (server shutting down or
//   starting), 53300 (too many connections) and a connection that is gone ->
//   kUnavailable (503); anything else -> kInternal with the SQLSTATE.
//
// Isolation: READ COMMITTED for writes, REPEATABLE READ READ ONLY for reads.
// Every guarantee rests on a statement that PostgreSQL makes atomic at that
// level, never on a read followed by a write:
// - one user per email, one word per anagram row, one message per job, one
//   unfinished job per unique key, one key per (scope, key): INSERT ... ON
//   CONFLICT DO NOTHING on a UNIQUE index. A concurrent insert of the same
//   value waits for the other transaction and then does nothing.
// - one execution per idempotency key: insert-or-nothing, then SELECT ...
//   FOR UPDATE of the key row (Sql::kLockKeyRow), so two nodes opening one
//   key serialise on the row and the second sees the first's result.
// - one approval, one transition per order, the key's lock (locked_at) and
//   every job completion: UPDATE ... WHERE <expected state or attempt>.
//   Under READ COMMITTED a concurrent UPDATE of the same row waits and then
//   re-checks the WHERE clause on the row's newest version, so the second
//   writer changes nothing and is told so (0 rows).
// - claims: one UPDATE over a CTE that selects runnable rows FOR UPDATE
//   SKIP LOCKED with a LIMIT, so two nodes never claim one job and never
//   wait for each other; the unclaimed (apply-only) batch locks its rows the
//   same way. Completions, failures and heartbeats stay fenced by attempt.
// SERIALIZABLE would add nothing these statements need and would turn every
// read-write overlap of two batches into a 40001 retry.
//
// Locks are waited for at most `lock_timeout_ms` (lock_timeout); then the
// phase fails with kBusy and is retried. Deadlocks between two nodes'
// batches (40P01) are retried the same way.
//
// Wake-ups: a transaction that staged jobs NOTIFYs the channel
// aftercommit_jobs just before its COMMIT (Driver::announce_jobs, an empty
// payload; PostgreSQL delivers it only on commit, once per transaction).
// Each node's listener (Driver::listen) holds one more connection that
// LISTENs and wakes its runner, so a job staged on one node starts on an
// idle other one at once rather than at its next poll. A hint only: the
// poll stays the safety net, and a listener whose connection broke wakes
// its runner once it is back (notifications sent meanwhile are lost).
//
// Round trips: each is a context switch to a server process that shares
// the node's cores, so what needs no answer is not sent alone. SAVEPOINT,
// RELEASE, the NOTIFY, and statements whose answer nobody reads
// (Stmt::exec_pipelined: the audit row) wait and go with the transaction's
// next statement or its COMMIT, in one libpq pipeline. A failure among them
// fails that statement, or the RELEASE of their savepoint (sent at once
// when statements wait), so always the phase that ran them. A group-mode
// create costs two round trips on the writer. Claims are planned with
// sorts off, so that they read the jobs_claimable index in order whatever
// the statistics say (docs/PERFORMANCE.md, "PostgreSQL rows").
//
// Schema: one migration chain of its own (db/pg/migrations.h), recorded in
// the table schema_migrations and applied in one transaction under an
// advisory lock, so that nodes starting at once migrate once. The check
// that a database is ours takes the same lock, so it never sees another
// node's migration half-way (tables listed, version not yet read). The lock
// is a session lock taken before BEGIN: a transaction that began before
// another node's migration committed keeps that node's new tables cached as
// missing (catalog invalidations are read at transaction start), which
// made a node refuse a database its peer had just migrated.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "db/driver.h"

namespace db::pg {

struct Options {
  std::string url;  // postgresql://... or postgres://...
  // How long a statement waits for a row or table lock another transaction
  // holds before it fails with kBusy (PostgreSQL's lock_timeout).
  int lock_timeout_ms = 1000;
  // Seconds libpq waits to connect (connect_timeout), so that a server that
  // is down answers 503 rather than hanging a request.
  int connect_timeout_s = 2;
  // The leader's lease (Driver::leader_lock): renewed every half of it,
  // taken over by another node once it lapsed, so a dead leader is replaced
  // within about this long plus a follower's next try.
  int leader_ttl_ms = 5000;
};

// Whether `target` names a PostgreSQL database rather than a SQLite file.
bool is_url(const std::string& target) noexcept;

[[nodiscard]] std::unique_ptr<Driver> make_driver(Options options);

// The URL without its password, for messages and logs.
std::string redacted(const std::string& url);

}  // namespace db::pg
