#include "db/database.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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
constexpr char kUserVersion[] = "PRAGMA user_version";
constexpr char kPing[] = "SELECT 1";

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
Database::~Database() = default;

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

  // Before anything that writes (the switch to WAL rewrites the header):
  // a file from a newer binary is refused untouched.
  auto version = db->schema_version();
  if (!version) return version.status();
  if (*version > latest_schema_version()) {
    return core::Status::invalid("database " + options.path + " is at schema version " +
                                 std::to_string(*version) + ", newer than this binary's " +
                                 std::to_string(latest_schema_version()) +
                                 "; refusing to touch it");
  }
  core::Status st = guarded([&] {
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

  if (*version < latest_schema_version()) {
    const int from = *version;
    st = db->write([&](Tx& tx) {
      apply_migrations(tx, from, latest_schema_version());
      return core::Status::ok();
    });
    if (!st) return core::Status(st.code(), "migrating " + options.path + ": " + st.message());
  }
  return db;
}

core::Status Database::write(const std::function<core::Status(Tx&)>& phase, TxStats* stats) {
  counters_.write_tx.fetch_add(1, std::memory_order_relaxed);
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
      for (auto& fn : tx.after_commit_) fn();
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
  core::Status st = guarded([&] {
    std::lock_guard lock(write_mu_);
    auto q = writer_->query(kUserVersion);
    if (q->executeStep()) version = q->getColumn(0).getInt();
    return core::Status::ok();
  });
  if (!st) return st;
  return version;
}

}  // namespace db
