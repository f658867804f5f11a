// db::Database: the database behind a driver (db/driver.h; SQLite's is
// db/sqlite/), its connections and the one way to write.
//
// Contract
// - `write(phase)` runs `phase` inside a write transaction opened with
//   BEGIN IMMEDIATE, so the write lock is taken up front and a phase never
//   fails half-way with SQLITE_BUSY on its first write. If the lock cannot be
//   had within the busy timeout (another *process* holds it), BEGIN is
//   retried with jittered exponential backoff up to `max_attempts`, then
//   write() returns Code::kBusy.
// - A phase returns Status: ok commits, anything else rolls back everything
//   the phase wrote and is returned unchanged. An exception thrown inside the
//   phase does the same: a db::Error carries the Status its driver
//   translated the engine's error to (busy, storage full, conflict,
//   internal), any other exception is kInternal. Nothing is ever
//   half-written. A phase must not call write() itself (it would deadlock),
//   must be safe to run again (it only writes through `tx`), and must not
//   rely on thread-locals: in group mode it runs on the writer thread.
// - write() returns only after COMMIT returned (or the phase was rolled
//   back). Callbacks registered with Tx::after_commit then run on the
//   caller's thread, never after a rollback.
// - `read(fn)` runs fn in a read transaction on a pooled read-only connection
//   (WAL lets readers run beside the writer). It sees only committed data.
//
// Commit modes (Options::commit_mode)
// - kGroup (default): one writer thread owns the write connection (on
//   PostgreSQL, Options::writers threads each own one: below). Callers
//   queue their phase and wait. The writer takes every queued phase, opens
//   one BEGIN IMMEDIATE, runs each phase inside its own SAVEPOINT (a phase
//   that fails rolls back to its savepoint only), then COMMITs once and wakes
//   every caller. The batch shares one fsync; each phase is still
//   all-or-nothing and sees the phases before it exactly as if they had
//   committed one by one (serial isolation). If a phase's error aborts the
//   whole transaction (SQLite does that for some I/O and full-disk errors),
//   the phases before it, which did nothing wrong, are run again in a new
//   transaction. If COMMIT itself fails, every phase of the batch gets that
//   error and nothing of the batch is written.
// - kPerRequest: the caller's thread runs BEGIN IMMEDIATE, its phase and
//   COMMIT under an in-process mutex: one fsync per write.
// In both modes in-process writers never contend inside SQLite's busy
// handler; busy retries only happen against other processes.
//
// On PostgreSQL (db/pg/driver.h) group mode runs Options::writers writer
// threads (2 by default), each with its own connection, taking batches from
// the one queue: while one waits for its round trips and its COMMIT's
// fsync, the other runs the next batch. Two of them are two writers on the
// server like two nodes' (a phase in one batch sees another's only once it
// committed), so they keep the guarantees nodes keep: each rests on a unique
// index or a row lock (db/pg/driver.h). Per-request mode keeps one writer
// connection per process. SQLite always has one writer: the file lock
// serializes writers anyway. A phase can then also meet kBusy after BEGIN
// (a deadlock between two batches, of this node or another, a lock wait
// beyond lock_timeout): the transaction is retried as a whole in
// per-request mode, and in group mode that phase alone is rolled back to
// its savepoint and run again in the next transaction, up to max_attempts
// in both, with the same jittered backoff; then write() returns kBusy.
//
// Durability: with Synchronous::kFull an acknowledged write (write() returned
// ok) survives power loss; with kNormal it survives a process crash but the
// last commits may be lost on power loss (WAL is synced only at checkpoints).
//
// Threads: every method is thread-safe. A Conn is used by one thread at a
// time (it is leased or owned by the writer thread), and its prepared
// statements never cross connections. Nothing here names an engine: a
// PostgreSQL driver stands behind the same interface.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/conn.h"
#include "db/driver.h"
#include "db/pg/driver.h"
#include "db/sqlite/driver.h"

namespace db {

enum class CommitMode { kGroup, kPerRequest };

struct Options {
  // The SQLite driver's own options: the file, synchronous, busy timeout,
  // page limit, whether a missing file may be created.
  sqlite::Options sqlite;
  // The PostgreSQL driver's: a non-empty pg.url selects it instead of
  // SQLite (set_target does that from --db).
  pg::Options pg;
  // Read connections open at once; a read waits for one beyond that. 0: no
  // limit on SQLite (a reader is a file handle), 8 on PostgreSQL (each is a
  // server process, and several nodes share the server's max_connections).
  int pool_size = 0;
  // Write attempts when the write lock is busy (another process holds it),
  // or, on PostgreSQL, a phase met a deadlock or a lock timeout; jittered
  // backoff between them; then write() returns kBusy.
  int max_attempts = 3;
  CommitMode commit_mode = CommitMode::kGroup;
  // Group mode: at most this many phases share one transaction.
  int max_batch = 256;
  // Group mode on PostgreSQL: writer threads, each with its own connection
  // and batches (0: 2). SQLite always uses 1. On a 2-core machine one node's
  // creates at 64 connections went from about 1,650/s with one writer to
  // 2,600-3,000/s with two (docs/PERFORMANCE.md).
  int writers = 0;
  // Schema version to migrate to; -1 = latest. A seam for tests that need a
  // file at an older version.
  int migrate_to = -1;
};

// Points `options` at `target`: a postgresql:// or postgres:// URL selects
// PostgreSQL, anything else is a SQLite file path.
void set_target(Options& options, const std::string& target);
// What `options` points at, for messages (a URL without its password).
std::string target_name(const Options& options);
bool is_postgres(const Options& options) noexcept;

// The schema version every migration of this binary leads to.
int latest_schema_version() noexcept;

// The schema version of the database `options` name, read without opening it
// for writing or migrating it (0 when there is none).
[[nodiscard]] core::Result<int> peek_schema_version(const Options& options);

// An open write transaction. Only Database::write creates one; a phase gets
// it by reference and must not keep it.
class Tx {
 public:
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  Conn& conn() noexcept { return conn_; }
  // Runs after a successful COMMIT (never after rollback), in registration order.
  void after_commit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  // Runs `fn` inside a nested SAVEPOINT of this transaction: when fn returns
  // non-ok (or throws; translated as in write()), everything it wrote is
  // rolled back and the rest of the transaction goes on. Lets one
  // transaction carry many independent units (the runner completes a batch
  // of jobs this way: one job's failure does not undo the others).
  [[nodiscard]] core::Status nested(const std::function<core::Status()>& fn);

  // Asks for a wake-up once this transaction commits: the commit listener
  // is told (CommitInfo::wake) and, in group mode, the follow-up phase runs
  // in the next transaction. A writer of rows that something waits for
  // calls it (db::stage_job does). Undone with the phase if it rolls back.
  void wake_on_commit() noexcept { wake_ = true; }
  bool wakes() const noexcept { return wake_; }
  // Tells the other processes on the database, on commit, that jobs were
  // staged (db::stage_job calls it): PostgreSQL NOTIFYs once per
  // transaction, so another node's runner wakes without waiting for its
  // poll (Database::listen); SQLite does nothing. Undone with the phase.
  void announce_jobs() noexcept { announce_ = true; }
  bool announces() const noexcept { return announce_; }

 private:
  friend class Database;
  explicit Tx(Conn& conn) noexcept : conn_(conn) {}
  Conn& conn_;
  bool wake_ = false;
  bool announce_ = false;
  std::vector<std::function<void()>> after_commit_;
};

struct TxStats {
  int attempts = 0;  // transactions this write needed (1 = no busy retry)
};

// Counters for /metrics. Monotonic, read without a lock.
struct DbCounters {
  std::atomic<std::uint64_t> write_tx = 0;        // write() calls
  std::atomic<std::uint64_t> tx_attempts = 0;     // BEGIN IMMEDIATE attempts
  std::atomic<std::uint64_t> busy_retries = 0;    // attempts that met SQLITE_BUSY
  std::atomic<std::uint64_t> busy_exhausted = 0;  // writes answered kBusy
  std::atomic<std::uint64_t> commits = 0;
  std::atomic<std::uint64_t> rollbacks = 0;       // phases rolled back (whole tx or savepoint)
  std::atomic<std::uint64_t> batches = 0;         // group mode: transactions the writer committed
  std::atomic<std::uint64_t> batched_phases = 0;  // group mode: phases in those transactions
  std::atomic<std::uint64_t> phase_reruns = 0;    // group mode: phases re-run after a lost tx
};

struct CommitInfo {
  bool wake = false;  // a phase of the committed transaction called Tx::wake_on_commit
};

class Database {
 public:
  // Opens (creating if allowed) the file, switches it to WAL, and applies the
  // migrations. Fails with a one-line message for a file that is not a
  // database, is read-only, or has a schema newer than this binary.
  static core::Result<std::unique_ptr<Database>> open(const Options& options);
  // The same over a driver already made (the seam a second engine uses).
  static core::Result<std::unique_ptr<Database>> open(const Options& options,
                                                      std::unique_ptr<Driver> driver);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  [[nodiscard]] core::Status write(const std::function<core::Status(Tx&)>& phase,
                                   TxStats* stats = nullptr);
  [[nodiscard]] core::Status read(const std::function<core::Status(Conn&)>& fn);

  // Called after every COMMIT, on the committing thread. Set once, before use.
  void set_commit_listener(std::function<void(const CommitInfo&)> listener);
  // Group mode: a phase the writer thread runs first in the transaction
  // that follows any COMMIT that asked for a wake-up (Tx::wake_on_commit), in
  // its own savepoint like any phase, with no caller waiting for it: whatever
  // the woken rows call for starts in the very next transaction after the
  // one that made them visible, with no thread hand-off (the job runner
  // installs its phase for unclaimed jobs here). Its after_commit callbacks run on the writer
  // thread. nullptr removes it; returns only once no writer thread can still be running the old
  // one. Returns false (and installs nothing) in per-request mode.
  bool set_follow_up(std::function<core::Status(Tx&)> phase);

  // A trivial read on a read connection: ok when the database answers.
  [[nodiscard]] core::Status ping();

  // The schema version the file is at (PRAGMA user_version).
  [[nodiscard]] core::Result<int> schema_version();

  // A new leader lock of this engine (db/leader.h): one per process, owned
  // by the caller.
  [[nodiscard]] core::Result<std::unique_ptr<LeaderLock>> leader_lock() {
    return driver_->leader_lock();
  }

  // Calls `on_wake` (on a thread of the driver's) when another process
  // announced staged jobs (Tx::announce_jobs), until the returned handle
  // is destroyed; nullptr on an engine without such hints (SQLite). A hint
  // only: the caller keeps polling.
  [[nodiscard]] std::unique_ptr<Listener> listen(std::function<void()> on_wake) {
    return driver_->listen(std::move(on_wake));
  }

  const DbCounters& counters() const noexcept { return counters_; }
  const Options& options() const noexcept { return options_; }

 private:
  struct WriteRequest;

  Database(Options options, std::unique_ptr<Driver> driver);
  core::Status write_per_request(const std::function<core::Status(Tx&)>& phase, TxStats* stats,
                                 std::vector<std::function<void()>>& after_commit);
  core::Status write_grouped(const std::function<core::Status(Tx&)>& phase, TxStats* stats,
                             std::vector<std::function<void()>>& after_commit);
  void writer_loop(Conn& writer);
  void run_batch(std::vector<WriteRequest*>& batch, Conn& writer);
  std::unique_ptr<Conn> lease_reader();
  void return_reader(std::unique_ptr<Conn> conn);

  const Options options_;
  const std::unique_ptr<Driver> driver_;
  DbCounters counters_;
  std::function<void(const CommitInfo&)> commit_listener_;

  // Per-request mode: write_mu_ guards writer_. Group mode: writer_ belongs
  // to the first writer thread alone (after open() finished setting it up),
  // each of more_writers_ to one more.
  std::mutex write_mu_;
  std::unique_ptr<Conn> writer_;
  std::vector<std::unique_ptr<Conn>> more_writers_;

  // Group mode: the queue of phases waiting for the writer thread.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<WriteRequest*> queue_;                                   // guarded by queue_mu_
  bool stopping_ = false;                                              // guarded by queue_mu_
  std::shared_ptr<const std::function<core::Status(Tx&)>> follow_up_;  // guarded by queue_mu_
  bool follow_up_due_ = false;  // guarded by queue_mu_: a COMMIT asked for a wake-up
  // How many writer threads run a batch that holds the follow-up, by the
  // follow-up's address (set_follow_up waits for the old one's to end).
  std::vector<const void*> running_follow_ups_;  // guarded by queue_mu_
  std::condition_variable follow_up_done_cv_;    // a batch with a follow-up ended
  std::vector<std::thread> writer_threads_;

  std::mutex readers_mu_;
  std::condition_variable readers_cv_;               // a reader came back
  std::vector<std::unique_ptr<Conn>> idle_readers_;  // guarded by readers_mu_
  int open_readers_ = 0;                             // guarded by readers_mu_
};

}  // namespace db
