#include "db/database.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "db/conn.h"
#include "db/migrations.h"

namespace db {
namespace {

// The only transaction-control statements in the program.
constexpr char kBeginImmediate[] = "BEGIN IMMEDIATE";
constexpr char kBeginRead[] = "BEGIN DEFERRED";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";
// Group commit: one savepoint per phase inside the batch's transaction.
constexpr char kSavepoint[] = "SAVEPOINT phase";
constexpr char kReleaseSavepoint[] = "RELEASE phase";
constexpr char kRollbackToSavepoint[] = "ROLLBACK TO phase";
// Tx::nested: a savepoint inside the phase's transaction (or savepoint).
constexpr char kNestedSavepoint[] = "SAVEPOINT nested";
constexpr char kReleaseNested[] = "RELEASE nested";
constexpr char kRollbackToNested[] = "ROLLBACK TO nested";
constexpr char kUserVersion[] = "PRAGMA user_version";
constexpr char kPing[] = "SELECT 1";

// SQLite keeps memory statistics by default, behind one process-wide mutex
// taken on every allocation; every connection (writer and readers) contends
// on it. Nothing here reads those statistics. sqlite3_config must run before
// SQLite initializes and before any other thread exists: a static
// initializer runs before main(), single-threaded.
const int kMemstatusOff = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

core::Status translate(int extended_code, const std::string& what) {
  switch (extended_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return core::Status::busy(what);
    case SQLITE_FULL:
      return core::Status::storage_full(what);
    case SQLITE_CONSTRAINT:
      return core::Status::conflict(what);
    default:
      return core::Status::internal(what + " (sqlite code " + std::to_string(extended_code) + ")");
  }
}

// Runs fn, turning any exception into a Status. Exceptions never leave db/.
template <class Fn>
core::Status guarded(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    return translate(e.getExtendedErrorCode(), e.what());
  } catch (const std::exception& e) {
    return core::Status::internal(e.what());
  } catch (...) {
    return core::Status::internal("unknown exception");
  }
}

void rollback_if_open(Conn& conn) noexcept {
  if (sqlite3_get_autocommit(conn.sqlite().getHandle()) != 0) return;  // nothing open
  try {
    conn.query(kRollback)->exec();
  } catch (...) {
    // A failed ROLLBACK leaves SQLite to roll back when the connection closes
    // or the next BEGIN fails; nothing here can do better.
  }
}

// Jittered exponential backoff between BEGIN IMMEDIATE attempts: 10, 20,
// 40 ms ... each scaled by a random factor in [0.5, 1.5), capped at 1 s, so
// writers that collided do not collide again in lockstep.
std::chrono::microseconds backoff(int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const double base_us = std::min(1'000'000.0, 10'000.0 * (1 << std::min(attempt - 1, 10)));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  return std::chrono::microseconds(static_cast<std::int64_t>(base_us * jitter(rng)));
}

}  // namespace

Database::Database(Options options) : options_(std::move(options)) {}

Database::~Database() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
}

core::Result<std::unique_ptr<Conn>> Database::open_conn(bool read_only) {
  std::unique_ptr<Conn> conn;
  core::Status st = guarded([&] {
    int flags = SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX;
    if (options_.create && !read_only) flags |= SQLite::OPEN_CREATE;
    auto sqlite =
        std::make_unique<SQLite::Database>(options_.path, flags, options_.busy_timeout_ms);
    if (sqlite3_db_readonly(sqlite->getHandle(), "main") == 1) {
      return core::Status::unavailable("database file is read-only: " + options_.path);
    }
    conn = std::make_unique<Conn>(std::move(sqlite));
    // Reading the schema proves the file is a database before anything else.
    conn->exec("SELECT count(*) FROM sqlite_schema");
    conn->exec("PRAGMA foreign_keys = ON");
    conn->exec(options_.synchronous == Synchronous::kFull ? "PRAGMA synchronous = FULL"
                                                          : "PRAGMA synchronous = NORMAL");
    conn->exec("PRAGMA temp_store = MEMORY");
    if (read_only) conn->exec("PRAGMA query_only = ON");
    if (!read_only && options_.max_page_count > 0) {
      conn->exec("PRAGMA max_page_count = " + std::to_string(options_.max_page_count));
    }
    return core::Status::ok();
  });
  if (!st) return st;
  return conn;
}

core::Result<std::unique_ptr<Database>> Database::open(const Options& options) {
  namespace fs = std::filesystem;
  if (!options.create && !fs::exists(options.path)) {
    return core::Status::not_found("no database at " + options.path);
  }
  std::unique_ptr<Database> db(new Database(options));
  auto writer = db->open_conn(/*read_only=*/false);
  if (!writer) {
    return core::Status(writer.status().code(),
                        "cannot open database " + options.path + ": " + writer.status().message());
  }
  db->writer_ = std::move(*writer);

  // Before anything that writes: a file from a newer binary, or one that is
  // not ours (another program's tables), is refused untouched.
  auto version = db->schema_version();
  if (!version) return version.status();
  core::Status st =
      db->read([&](Conn& c) { return check_schema_is_ours(c, options.path, *version); });
  if (!st) return st;

  // Migrations run before the switch to WAL, so a migration that fails
  // leaves the file byte for byte as it was (the rollback journal restores
  // it; the journal mode is a header byte). They run with foreign keys off,
  // which only works outside a transaction and so before the writer thread
  // takes the connection (db/migrations.h says why and what checks them).
  const int target = options.migrate_to < 0 ? latest_schema_version() : options.migrate_to;
  if (*version < target) {
    std::vector<std::function<void()>> unused_after_commit;
    st = guarded([&] {
      db->writer_->exec("PRAGMA foreign_keys = OFF");
      return core::Status::ok();
    });
    if (st) {
      st = db->write_per_request(
          [&](Tx& tx) {
            (void)apply_migrations(tx, target);
            return core::Status::ok();
          },
          nullptr, unused_after_commit);
      core::Status on = guarded([&] {
        db->writer_->exec("PRAGMA foreign_keys = ON");
        return core::Status::ok();
      });
      if (st) st = on;
    }
    if (!st) return core::Status(st.code(), "migrating " + options.path + ": " + st.message());
  }

  st = guarded([&] {
    SQLite::Statement mode(db->writer_->sqlite(), "PRAGMA journal_mode = WAL");
    if (!mode.executeStep() || mode.getColumn(0).getString() != "wal") {
      return core::Status::unavailable("cannot switch " + options.path + " to WAL mode");
    }
    // Keep a WAL that grew under a burst from staying large on disk.
    db->writer_->exec("PRAGMA journal_size_limit = 67108864");
    return core::Status::ok();
  });
  if (!st)
    return core::Status(st.code(), "cannot open database " + options.path + ": " + st.message());

  if (options.commit_mode == CommitMode::kGroup) {
    Database* raw = db.get();
    db->writer_thread_ = std::thread([raw] { raw->writer_loop(); });
  }
  return db;
}

core::Status Tx::nested(const std::function<core::Status()>& fn) {
  conn_.query(kNestedSavepoint)->exec();
  core::Status st = guarded(fn);
  if (st) {
    conn_.query(kReleaseNested)->exec();
    return st;
  }
  // If SQLite already rolled back the whole transaction these throw, and the
  // enclosing write() fails as a whole: nothing is half-written either way.
  conn_.query(kRollbackToNested)->exec();
  conn_.query(kReleaseNested)->exec();
  return st;
}

// Everything a caller hands the writer thread, and what it gets back.
struct Database::WriteRequest {
  const std::function<core::Status(Tx&)>* phase = nullptr;
  core::Status status;
  int attempts = 0;
  std::vector<std::function<void()>> after_commit;

  // The HTTP thread sleeps here until the writer is done with its phase. A
  // mutex and condition variable rather than std::binary_semaphore: GCC 12's
  // semaphore spins with sched_yield before it sleeps, and 64 waiters
  // yielding to each other took 15% of the server's CPU from the writer
  // (perf, docs/PERFORMANCE.md).
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;

  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  // Notifies under the lock, so the waiter (who owns this object) cannot
  // return and destroy it before the writer has let go of it.
  void finish() {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_one();
  }
};

core::Status Database::write(const std::function<core::Status(Tx&)>& phase, TxStats* stats) {
  counters_.write_tx.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::function<void()>> after_commit;
  core::Status st = options_.commit_mode == CommitMode::kGroup
                        ? write_grouped(phase, stats, after_commit)
                        : write_per_request(phase, stats, after_commit);
  if (st) {
    for (auto& fn : after_commit) fn();
  }
  return st;
}

core::Status Database::write_per_request(const std::function<core::Status(Tx&)>& phase,
                                         TxStats* stats,
                                         std::vector<std::function<void()>>& after_commit) {
  std::unique_lock lock(write_mu_);
  for (int attempt = 1;; ++attempt) {
    counters_.tx_attempts.fetch_add(1, std::memory_order_relaxed);
    if (stats) stats->attempts = attempt;
    Tx tx(*writer_);
    bool began = false;
    core::Status st = guarded([&] {
      writer_->query(kBeginImmediate)->exec();
      began = true;
      core::Status phase_st = phase(tx);
      if (!phase_st) return phase_st;
      writer_->query(kCommit)->exec();
      return core::Status::ok();
    });
    if (st) {
      counters_.commits.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      if (commit_listener_) commit_listener_(CommitInfo{tx.jobs_staged()});
      after_commit = std::move(tx.after_commit_);
      return st;
    }
    rollback_if_open(*writer_);
    if (began) counters_.rollbacks.fetch_add(1, std::memory_order_relaxed);
    if (st.code() != core::Code::kBusy) return st;
    if (attempt >= options_.max_attempts) {
      counters_.busy_exhausted.fetch_add(1, std::memory_order_relaxed);
      return core::Status::busy("write lock not acquired after " + std::to_string(attempt) +
                                " attempts: " + st.message());
    }
    counters_.busy_retries.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    std::this_thread::sleep_for(backoff(attempt));
    lock.lock();
  }
}

core::Status Database::write_grouped(const std::function<core::Status(Tx&)>& phase, TxStats* stats,
                                     std::vector<std::function<void()>>& after_commit) {
  WriteRequest request;
  request.phase = &phase;
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return core::Status::unavailable("the database is closing");
    queue_.push_back(&request);
  }
  queue_cv_.notify_one();
  request.wait();  // the writer finished it after COMMIT (or rollback)
  if (stats) stats->attempts = request.attempts;
  after_commit = std::move(request.after_commit);
  return request.status;
}

void Database::writer_loop() {
  std::vector<WriteRequest*> batch;
  for (;;) {
    std::shared_ptr<const std::function<core::Status(Tx&)>> follow_up;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] {
        return !queue_.empty() || stopping_ || (follow_up_due_ && follow_up_ != nullptr);
      });
      if (queue_.empty() && stopping_) return;  // stopping, and nothing left to write
      if (follow_up_due_ && follow_up_ != nullptr) follow_up = follow_up_;
      follow_up_due_ = false;
      const std::size_t n = std::min<std::size_t>(queue_.size(), options_.max_batch);
      batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    // The follow-up goes first: the jobs it runs were made visible by the
    // COMMIT that just returned.
    WriteRequest own;
    if (follow_up) {
      own.phase = follow_up.get();
      batch.insert(batch.begin(), &own);
    }
    run_batch(batch);
    for (WriteRequest* r : batch) {
      if (r != &own) r->finish();  // r may be gone after this
    }
    if (own.status) {
      for (auto& fn : own.after_commit) fn();
    }
    batch.clear();
  }
}

bool Database::set_follow_up(std::function<core::Status(Tx&)> phase) {
  if (options_.commit_mode != CommitMode::kGroup) return false;
  {
    std::lock_guard lock(queue_mu_);
    follow_up_ = phase ? std::make_shared<const std::function<core::Status(Tx&)>>(std::move(phase))
                       : nullptr;
  }
  // A batch that took the old follow-up was dequeued before this no-op
  // phase was queued, so once the no-op's batch is done the old one is too.
  (void)write([](Tx&) { return core::Status::ok(); });
  return true;
}

void Database::run_batch(std::vector<WriteRequest*>& batch) {
  std::vector<WriteRequest*> pending = batch;
  while (!pending.empty()) {
    // 1. The write lock, retried only against other processes.
    core::Status begin = core::Status::ok();
    int attempt = 1;
    for (;; ++attempt) {
      counters_.tx_attempts.fetch_add(1, std::memory_order_relaxed);
      begin = guarded([&] {
        writer_->query(kBeginImmediate)->exec();
        return core::Status::ok();
      });
      if (begin || begin.code() != core::Code::kBusy || attempt >= options_.max_attempts) break;
      counters_.busy_retries.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(backoff(attempt));
    }
    for (WriteRequest* r : pending) r->attempts += attempt;
    if (!begin) {
      rollback_if_open(*writer_);
      if (begin.code() == core::Code::kBusy) {
        counters_.busy_exhausted.fetch_add(pending.size(), std::memory_order_relaxed);
        begin = core::Status::busy("write lock not acquired after " + std::to_string(attempt) +
                                   " attempts: " + begin.message());
      }
      for (WriteRequest* r : pending) r->status = begin;
      return;
    }

    // 2. Each phase in its own savepoint.
    std::vector<WriteRequest*> applied;  // phases whose savepoint was released
    std::vector<WriteRequest*> rerun;    // innocent phases whose transaction was lost
    bool jobs_staged = false;
    bool tx_lost = false;
    for (WriteRequest* r : pending) {
      if (tx_lost) {
        rerun.push_back(r);
        continue;
      }
      Tx tx(*writer_);
      core::Status st = guarded([&] {
        writer_->query(kSavepoint)->exec();
        core::Status phase_st = (*r->phase)(tx);
        if (!phase_st) return phase_st;
        writer_->query(kReleaseSavepoint)->exec();
        return core::Status::ok();
      });
      if (st) {
        jobs_staged = jobs_staged || tx.jobs_staged();
        r->after_commit = std::move(tx.after_commit_);
        applied.push_back(r);
        continue;
      }
      r->status = st;
      counters_.rollbacks.fetch_add(1, std::memory_order_relaxed);
      core::Status undone = core::Status::internal("transaction already rolled back");
      if (sqlite3_get_autocommit(writer_->sqlite().getHandle()) == 0) {
        undone = guarded([&] {
          writer_->query(kRollbackToSavepoint)->exec();
          writer_->query(kReleaseSavepoint)->exec();
          return core::Status::ok();
        });
      }
      if (!undone) {
        // SQLite rolled back the whole transaction (or could not undo the
        // savepoint): the phases applied so far are gone with it. They did
        // nothing wrong, so they run again in a new transaction.
        tx_lost = true;
        for (WriteRequest* a : applied) a->after_commit.clear();
        rerun.insert(rerun.end(), applied.begin(), applied.end());
        applied.clear();
        jobs_staged = false;
      }
    }

    // 3. One COMMIT, one fsync, for every applied phase.
    if (tx_lost) {
      rollback_if_open(*writer_);
    } else {
      core::Status commit = guarded([&] {
        writer_->query(kCommit)->exec();
        return core::Status::ok();
      });
      if (commit) {
        counters_.commits.fetch_add(1, std::memory_order_relaxed);
        counters_.batches.fetch_add(1, std::memory_order_relaxed);
        counters_.batched_phases.fetch_add(applied.size(), std::memory_order_relaxed);
        for (WriteRequest* r : applied) r->status = core::Status::ok();
        if (jobs_staged) follow_up_due_ = true;
        if (commit_listener_) commit_listener_(CommitInfo{jobs_staged});
      } else {
        rollback_if_open(*writer_);
        counters_.rollbacks.fetch_add(applied.size(), std::memory_order_relaxed);
        for (WriteRequest* r : applied) {
          r->status = commit;
          r->after_commit.clear();
        }
      }
    }
    counters_.phase_reruns.fetch_add(rerun.size(), std::memory_order_relaxed);
    pending = std::move(rerun);
  }
}

std::unique_ptr<Conn> Database::lease_reader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      auto conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return conn;
    }
  }
  auto conn = open_conn(/*read_only=*/true);
  return conn ? std::move(*conn) : nullptr;
}

void Database::return_reader(std::unique_ptr<Conn> conn) {
  std::lock_guard lock(readers_mu_);
  idle_readers_.push_back(std::move(conn));
}

core::Status Database::read(const std::function<core::Status(Conn&)>& fn) {
  std::unique_ptr<Conn> conn = lease_reader();
  if (!conn) return core::Status::unavailable("cannot open a read connection to " + options_.path);
  core::Status st = guarded([&] {
    conn->query(kBeginRead)->exec();
    core::Status inner = fn(*conn);
    conn->query(kCommit)->exec();
    return inner;
  });
  rollback_if_open(*conn);
  return_reader(std::move(conn));
  return st;
}

void Database::set_commit_listener(std::function<void(const CommitInfo&)> listener) {
  commit_listener_ = std::move(listener);
}

core::Status Database::ping() {
  return read([](Conn& c) {
    auto q = c.query(kPing);
    q->executeStep();
    return core::Status::ok();
  });
}

core::Result<int> Database::schema_version() {
  int version = 0;
  core::Status st = read([&](Conn& c) {
    auto q = c.query(kUserVersion);
    if (q->executeStep()) version = q->getColumn(0).getInt();
    return core::Status::ok();
  });
  if (!st) return st;
  return version;
}

}  // namespace db
