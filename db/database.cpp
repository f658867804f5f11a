#include "db/database.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "db/sqlite/migrations.h"
#include "db/transaction.h"

namespace db {
namespace {

// Runs fn, turning any exception into a Status. Exceptions never leave db/.
template <class Fn>
core::Status guarded(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const Error& e) {
    return e.status();
  } catch (const std::exception& e) {
    return core::Status::internal(e.what());
  } catch (...) {
    return core::Status::internal("unknown exception");
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

namespace {
Options with_pool_default(Options options) {
  if (options.pool_size <= 0 && is_postgres(options)) options.pool_size = 8;
  return options;
}
}  // namespace

Database::Database(Options options, std::unique_ptr<Driver> driver)
    : options_(with_pool_default(std::move(options))), driver_(std::move(driver)) {}

Database::~Database() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  for (auto& t : writer_threads_) t.join();
}

void set_target(Options& options, const std::string& target) {
  if (pg::is_url(target)) {
    options.pg.url = target;
  } else {
    options.sqlite.path = target;
  }
}

bool is_postgres(const Options& options) noexcept {
  return !options.pg.url.empty();
}

std::string target_name(const Options& options) {
  return is_postgres(options) ? pg::redacted(options.pg.url) : options.sqlite.path;
}

int latest_schema_version() noexcept {
  return sqlite::latest_schema_version();
}

core::Result<int> peek_schema_version(const Options& options) {
  if (!is_postgres(options)) return sqlite::peek_schema_version(options.sqlite.path);
  auto driver = pg::make_driver(options.pg);
  auto conn = driver->connect(ConnRole::kReader);
  if (!conn) return conn.status();
  return driver->schema_version(**conn);
}

core::Result<std::unique_ptr<Database>> Database::open(const Options& options) {
  if (is_postgres(options)) return open(options, pg::make_driver(options.pg));
  return open(options, sqlite::make_driver(options.sqlite));
}

core::Result<std::unique_ptr<Database>> Database::open(const Options& options,
                                                       std::unique_ptr<Driver> driver) {
  const std::string target = driver->target();
  std::unique_ptr<Database> db(new Database(options, std::move(driver)));
  Driver& d = *db->driver_;
  auto writer = d.connect(ConnRole::kWriter);
  if (!writer) {
    if (writer.status().code() == core::Code::kNotFound) return writer.status();
    return core::Status(writer.status().code(),
                        "cannot open database " + target + ": " + writer.status().message());
  }
  db->writer_ = std::move(*writer);

  // Before anything that writes: a database from a newer binary, or one that
  // is not ours (another program's tables), is refused untouched.
  auto version = d.schema_version(*db->writer_);
  if (!version) return version.status();
  core::Status st = d.check_schema_is_ours(*db->writer_, *version);
  if (!st) return st;

  const int to = options.migrate_to < 0 ? d.latest_schema_version() : options.migrate_to;
  if (*version < to) {
    auto migrated = d.migrate(*db->writer_, to);
    db->counters_.tx_attempts.fetch_add(1, std::memory_order_relaxed);
    if (migrated) db->counters_.commits.fetch_add(1, std::memory_order_relaxed);
    if (!migrated) {
      return core::Status(migrated.status().code(),
                          "migrating " + target + ": " + migrated.status().message());
    }
  }

  st = d.prepare_to_serve(*db->writer_);
  if (!st) return core::Status(st.code(), "cannot open database " + target + ": " + st.message());

  if (options.commit_mode == CommitMode::kGroup) {
    Database* raw = db.get();
    const int writers =
        is_postgres(options) ? std::max(1, options.writers == 0 ? 2 : options.writers) : 1;
    for (int i = 1; i < writers; ++i) {
      auto more = d.connect(ConnRole::kWriter);
      if (!more) {
        return core::Status(more.status().code(),
                            "cannot open database " + target + ": " + more.status().message());
      }
      db->more_writers_.push_back(std::move(*more));
    }
    db->writer_threads_.emplace_back([raw] { raw->writer_loop(*raw->writer_); });
    for (auto& more : db->more_writers_) {
      Conn* conn = more.get();
      db->writer_threads_.emplace_back([raw, conn] { raw->writer_loop(*conn); });
    }
  }
  return db;
}

core::Status Tx::nested(const std::function<core::Status()>& fn) {
  SavepointScope savepoint(conn_);
  core::Status st = guarded(fn);
  if (st) {
    savepoint.release();
    return st;
  }
  // If the engine already rolled back the whole transaction, nothing can be
  // undone to the savepoint: the enclosing write() fails as a whole, and
  // nothing is half-written either way.
  if (!savepoint.rollback()) throw Error(st);
  return st;
}

// Everything a caller hands the writer thread, and what it gets back.
struct Database::WriteRequest {
  const std::function<core::Status(Tx&)>* phase = nullptr;
  core::Status status;
  int attempts = 0;
  int busy_runs = 0;  // runs of the phase itself that ended in kBusy (PostgreSQL)
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
      TxScope scope(*writer_, TxMode::kWrite);  // rolls back unless committed
      began = true;
      core::Status phase_st = phase(tx);
      if (!phase_st) return phase_st;
      if (tx.announces()) driver_->announce_jobs(*writer_);
      scope.commit();
      return core::Status::ok();
    });
    if (st) {
      counters_.commits.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      if (commit_listener_) commit_listener_(CommitInfo{tx.wakes()});
      after_commit = std::move(tx.after_commit_);
      return st;
    }
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

void Database::writer_loop(Conn& writer) {
  std::vector<WriteRequest*> batch;
  for (;;) {
    std::shared_ptr<const std::function<core::Status(Tx&)>> follow_up;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] {
        return !queue_.empty() || stopping_ || (follow_up_due_ && follow_up_ != nullptr);
      });
      if (queue_.empty() && stopping_) return;  // stopping, and nothing left to write
      if (follow_up_due_ && follow_up_ != nullptr) {
        follow_up = follow_up_;
        running_follow_ups_.push_back(follow_up.get());
      }
      follow_up_due_ = false;
      const std::size_t n = std::min<std::size_t>(queue_.size(), options_.max_batch);
      batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    // The follow-up goes first: the rows it acts on were made visible by the
    // COMMIT that just returned.
    WriteRequest own;
    if (follow_up) {
      own.phase = follow_up.get();
      batch.insert(batch.begin(), &own);
    }
    run_batch(batch, writer);
    for (WriteRequest* r : batch) {
      if (r != &own) r->finish();  // r may be gone after this
    }
    if (own.status) {
      for (auto& fn : own.after_commit) fn();
    }
    batch.clear();
    if (follow_up) {
      {
        std::lock_guard lock(queue_mu_);
        running_follow_ups_.erase(
            std::find(running_follow_ups_.begin(), running_follow_ups_.end(), follow_up.get()));
      }
      follow_up_done_cv_.notify_all();
    }
  }
}

bool Database::set_follow_up(std::function<core::Status(Tx&)> phase) {
  if (options_.commit_mode != CommitMode::kGroup) return false;
  std::shared_ptr<const std::function<core::Status(Tx&)>> old;
  std::unique_lock lock(queue_mu_);
  old = std::move(follow_up_);
  follow_up_ =
      phase ? std::make_shared<const std::function<core::Status(Tx&)>>(std::move(phase)) : nullptr;
  // A writer thread takes the follow-up and says so under this lock, so no
  // batch takes the old one from now on; wait for those that did.
  follow_up_done_cv_.wait(lock, [&] {
    return old == nullptr || std::find(running_follow_ups_.begin(), running_follow_ups_.end(),
                                       old.get()) == running_follow_ups_.end();
  });
  return true;
}

void Database::run_batch(std::vector<WriteRequest*>& batch, Conn& writer) {
  std::vector<WriteRequest*> pending = batch;
  while (!pending.empty()) {
    // 1. The write lock, retried only against other processes.
    core::Status begin = core::Status::ok();
    std::optional<TxScope> scope;  // rolls back unless committed
    int attempt = 1;
    for (;; ++attempt) {
      counters_.tx_attempts.fetch_add(1, std::memory_order_relaxed);
      begin = guarded([&] {
        scope.emplace(writer, TxMode::kWrite);
        return core::Status::ok();
      });
      if (begin || begin.code() != core::Code::kBusy || attempt >= options_.max_attempts) break;
      counters_.busy_retries.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(backoff(attempt));
    }
    for (WriteRequest* r : pending) r->attempts += attempt;
    if (!begin) {
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
    bool wake = false;
    bool announce = false;
    bool tx_lost = false;
    int busy_rerun = 0;  // the most runs a phase retried after kBusy has had
    for (WriteRequest* r : pending) {
      if (tx_lost) {
        rerun.push_back(r);
        continue;
      }
      Tx tx(writer);
      std::optional<SavepointScope> savepoint;
      core::Status st = guarded([&] {
        savepoint.emplace(writer);
        core::Status phase_st = (*r->phase)(tx);
        if (!phase_st) return phase_st;
        savepoint->release();
        return core::Status::ok();
      });
      if (st) {
        wake = wake || tx.wakes();
        announce = announce || tx.announces();
        r->after_commit = std::move(tx.after_commit_);
        applied.push_back(r);
        continue;
      }
      r->status = st;
      counters_.rollbacks.fetch_add(1, std::memory_order_relaxed);
      const bool undone = savepoint.has_value() && savepoint->rollback();
      // A phase that met a deadlock or a lock timeout (PostgreSQL, another
      // node) did nothing wrong: it runs again in the next transaction.
      const bool retry_busy =
          undone && st.code() == core::Code::kBusy && ++r->busy_runs < options_.max_attempts;
      if (retry_busy) {
        counters_.busy_retries.fetch_add(1, std::memory_order_relaxed);
        busy_rerun = std::max(busy_rerun, r->busy_runs);
        rerun.push_back(r);
        continue;
      }
      if (undone && st.code() == core::Code::kBusy && r->busy_runs >= options_.max_attempts) {
        counters_.busy_exhausted.fetch_add(1, std::memory_order_relaxed);
        r->status = core::Status::busy("gave up after " + std::to_string(r->busy_runs) +
                                       " attempts: " + st.message());
      }
      if (!undone) {
        // The engine rolled back the whole transaction (or could not undo the
        // savepoint): the phases applied so far are gone with it. They did
        // nothing wrong, so they run again in a new transaction.
        tx_lost = true;
        for (WriteRequest* a : applied) a->after_commit.clear();
        rerun.insert(rerun.end(), applied.begin(), applied.end());
        applied.clear();
        wake = false;
        announce = false;
      }
    }

    // 3. One COMMIT, one fsync, for every applied phase.
    if (tx_lost) {
      scope.reset();
    } else {
      core::Status commit = guarded([&] {
        if (announce) driver_->announce_jobs(writer);
        scope->commit();
        return core::Status::ok();
      });
      if (commit) {
        counters_.commits.fetch_add(1, std::memory_order_relaxed);
        counters_.batches.fetch_add(1, std::memory_order_relaxed);
        counters_.batched_phases.fetch_add(applied.size(), std::memory_order_relaxed);
        for (WriteRequest* r : applied) r->status = core::Status::ok();
        if (wake) {
          std::lock_guard lock(queue_mu_);
          follow_up_due_ = true;
        }
        if (commit_listener_) commit_listener_(CommitInfo{wake});
      } else {
        scope.reset();
        counters_.rollbacks.fetch_add(applied.size(), std::memory_order_relaxed);
        for (WriteRequest* r : applied) {
          r->status = commit;
          r->after_commit.clear();
        }
      }
    }
    counters_.phase_reruns.fetch_add(rerun.size(), std::memory_order_relaxed);
    pending = std::move(rerun);
    if (busy_rerun > 0) std::this_thread::sleep_for(backoff(busy_rerun));
  }
}

// Beyond pool_size open readers, a read waits for one to come back rather
// than opening another server connection.
std::unique_ptr<Conn> Database::lease_reader() {
  {
    std::unique_lock lock(readers_mu_);
    readers_cv_.wait(lock, [&] {
      return !idle_readers_.empty() || options_.pool_size <= 0 ||
             open_readers_ < options_.pool_size;
    });
    if (!idle_readers_.empty()) {
      auto conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return conn;
    }
    ++open_readers_;
  }
  auto conn = driver_->connect(ConnRole::kReader);
  if (conn) return std::move(*conn);
  {
    std::lock_guard lock(readers_mu_);
    --open_readers_;
  }
  readers_cv_.notify_one();
  return nullptr;
}

void Database::return_reader(std::unique_ptr<Conn> conn) {
  {
    std::lock_guard lock(readers_mu_);
    idle_readers_.push_back(std::move(conn));
  }
  readers_cv_.notify_one();
}

core::Status Database::read(const std::function<core::Status(Conn&)>& fn) {
  std::unique_ptr<Conn> conn = lease_reader();
  if (!conn) {
    return core::Status::unavailable("cannot open a read connection to " + driver_->target());
  }
  core::Status st = guarded([&] {
    TxScope scope(*conn, TxMode::kRead);  // rolled back if fn throws
    core::Status inner = fn(*conn);
    scope.commit();
    return inner;
  });
  return_reader(std::move(conn));
  return st;
}

void Database::set_commit_listener(std::function<void(const CommitInfo&)> listener) {
  commit_listener_ = std::move(listener);
}

core::Status Database::ping() {
  return read([](Conn& c) {
    auto q = c.query(Sql::kPing);
    q.step();
    return core::Status::ok();
  });
}

core::Result<int> Database::schema_version() {
  int version = 0;
  core::Status st = read([&](Conn& c) {
    auto v = driver_->schema_version(c);
    if (!v) return v.status();
    version = *v;
    return core::Status::ok();
  });
  if (!st) return st;
  return version;
}

}  // namespace db
