#include "db/sqlite/driver.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "db/sqlite/file_leader.h"
#include "db/sqlite/migrations.h"
#include "db/sqlite/sql.h"

namespace db::sqlite {
namespace {

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

// Runs fn, rethrowing SQLiteCpp's exception as db::Error with its translated
// Status: no SQLite type leaves the driver.
template <class Fn>
decltype(auto) translated(Fn&& fn) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    throw Error(translate(e.getExtendedErrorCode(), e.what()));
  }
}

class SqliteStmt final : public StmtImpl {
 public:
  SqliteStmt(SQLite::Database& db, const char* sql) : db_(db.getHandle()), s_(db, sql) {}

  void bind_int64(int index, std::int64_t value) override {
    translated([&] { s_.bind(index, static_cast<int64_t>(value)); });
  }
  void bind_double(int index, double value) override {
    translated([&] { s_.bind(index, value); });
  }
  void bind_text(int index, const std::string& value, bool copy) override {
    translated([&] {
      if (copy) {
        s_.bind(index, value);
      } else {
        s_.bindNoCopy(index, value);
      }
    });
  }
  // json_each reads the list: the statement's text says `IN (SELECT value
  // FROM json_each(?N))`.
  void bind_text_list(int index, const std::vector<std::string>& values) override {
    translated([&] { s_.bind(index, nlohmann::json(values).dump()); });
  }
  void bind_null(int index) override {
    translated([&] { s_.bind(index); });
  }
  bool step() override {
    return translated([&] { return s_.executeStep(); });
  }
  int exec() override {
    return translated([&] {
      // Steps to SQLITE_DONE, whatever rows a RETURNING clause gives back.
      while (s_.executeStep()) {
      }
      return sqlite3_changes(db_);
    });
  }
  std::int64_t column_int64(int col) const override {
    return translated([&] { return static_cast<std::int64_t>(s_.getColumn(col).getInt64()); });
  }
  double column_double(int col) const override {
    return translated([&] { return s_.getColumn(col).getDouble(); });
  }
  std::string column_text(int col) const override {
    return translated([&] { return s_.getColumn(col).getString(); });
  }
  bool column_is_null(int col) const override {
    return translated([&] { return s_.getColumn(col).isNull(); });
  }
  void reset() noexcept override {
    s_.tryReset();
    try {
      s_.clearBindings();  // sqlite3_clear_bindings cannot fail; the wrapper may throw in theory
    } catch (...) {
    }
  }

 private:
  sqlite3* const db_;
  mutable SQLite::Statement s_;
};

class SqliteConn final : public Conn {
 public:
  explicit SqliteConn(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

  SQLite::Database& sqlite() noexcept { return *db_; }

  Stmt query(Sql name) override {
    return Stmt(prepared(named_[static_cast<std::size_t>(name)], sql_text(name)));
  }

  void exec(const std::string& sql) override {
    translated([&] { db_->exec(sql); });
  }

  bool in_transaction() const noexcept override {
    return sqlite3_get_autocommit(db_->getHandle()) == 0;
  }

 private:
  void begin(TxMode mode) override {
    // The only transaction-control statements in the program.
    static constexpr char kBeginImmediate[] = "BEGIN IMMEDIATE";
    static constexpr char kBeginDeferred[] = "BEGIN DEFERRED";
    control(mode == TxMode::kWrite ? begin_write_ : begin_read_,
            mode == TxMode::kWrite ? kBeginImmediate : kBeginDeferred)
        .exec();
  }
  void commit() override { control(commit_, "COMMIT").exec(); }
  void rollback() noexcept override {
    if (!in_transaction()) return;
    try {
      control(rollback_, "ROLLBACK").exec();
    } catch (...) {
      // A failed ROLLBACK leaves SQLite to roll back when the connection
      // closes or the next BEGIN fails; nothing here can do better.
    }
  }
  void savepoint(int depth) override { savepoint_stmt(depth, Op::kOpen).exec(); }
  void release(int depth) override { savepoint_stmt(depth, Op::kRelease).exec(); }
  void rollback_to(int depth) override {
    savepoint_stmt(depth, Op::kRollbackTo).exec();
    savepoint_stmt(depth, Op::kRelease).exec();
  }

  enum class Op { kOpen, kRelease, kRollbackTo };

  Stmt prepared(std::unique_ptr<SqliteStmt>& slot, const char* sql) {
    if (!slot) slot = translated([&] { return std::make_unique<SqliteStmt>(*db_, sql); });
    return Stmt(*slot);
  }
  Stmt control(std::unique_ptr<SqliteStmt>& slot, const char* sql) { return prepared(slot, sql); }
  // Prepared once per depth and operation; the names are built only then.
  Stmt savepoint_stmt(int depth, Op op) {
    const auto level = static_cast<std::size_t>(depth);
    if (savepoints_.size() <= level) savepoints_.resize(level + 1);
    auto& slot = savepoints_[level][static_cast<std::size_t>(op)];
    if (!slot) {
      static constexpr const char* kVerb[] = {"SAVEPOINT sp", "RELEASE sp", "ROLLBACK TO sp"};
      const std::string sql = kVerb[static_cast<std::size_t>(op)] + std::to_string(depth);
      return prepared(slot, sql.c_str());
    }
    return Stmt(*slot);
  }

  std::unique_ptr<SQLite::Database> db_;
  std::array<std::unique_ptr<SqliteStmt>, kSqlCount> named_;
  std::unique_ptr<SqliteStmt> begin_write_, begin_read_, commit_, rollback_;
  std::vector<std::array<std::unique_ptr<SqliteStmt>, 3>> savepoints_;  // by depth
};

SqliteConn& sqlite_conn(Conn& conn) {
  return static_cast<SqliteConn&>(conn);
}

class SqliteDriver final : public Driver {
 public:
  explicit SqliteDriver(Options options) : options_(std::move(options)) {}

  const std::string& target() const noexcept override { return options_.path; }

  core::Result<std::unique_ptr<Conn>> connect(ConnRole role) override {
    const bool read_only = role == ConnRole::kReader;
    if (!options_.create && !std::filesystem::exists(options_.path)) {
      return core::Status::not_found("no database at " + options_.path);
    }
    try {
      int flags = SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX;
      if (options_.create && !read_only) flags |= SQLite::OPEN_CREATE;
      auto db = std::make_unique<SQLite::Database>(options_.path, flags, options_.busy_timeout_ms);
      if (sqlite3_db_readonly(db->getHandle(), "main") == 1) {
        return core::Status::unavailable("database file is read-only: " + options_.path);
      }
      // Reading the schema proves the file is a database before anything else.
      db->exec("SELECT count(*) FROM sqlite_schema");
      db->exec("PRAGMA foreign_keys = ON");
      db->exec(options_.synchronous == Synchronous::kFull ? "PRAGMA synchronous = FULL"
                                                          : "PRAGMA synchronous = NORMAL");
      db->exec("PRAGMA temp_store = MEMORY");
      if (read_only) db->exec("PRAGMA query_only = ON");
      if (!read_only && options_.max_page_count > 0) {
        db->exec("PRAGMA max_page_count = " + std::to_string(options_.max_page_count));
      }
      return std::unique_ptr<Conn>(std::make_unique<SqliteConn>(std::move(db)));
    } catch (const SQLite::Exception& e) {
      return translate(e.getExtendedErrorCode(), e.what());
    } catch (const std::exception& e) {
      return core::Status::internal(e.what());
    }
  }

  core::Result<int> schema_version(Conn& conn) override {
    try {
      return sqlite_conn(conn).sqlite().execAndGet("PRAGMA user_version").getInt();
    } catch (const SQLite::Exception& e) {
      return translate(e.getExtendedErrorCode(), e.what());
    }
  }

  int latest_schema_version() const noexcept override { return sqlite::latest_schema_version(); }

  core::Status check_schema_is_ours(Conn& conn, int version) override {
    try {
      return sqlite::check_schema_is_ours(sqlite_conn(conn).sqlite(), options_.path, version);
    } catch (const SQLite::Exception& e) {
      return translate(e.getExtendedErrorCode(), e.what());
    }
  }

  // Migrations run with foreign keys off, which only works outside a
  // transaction (db/sqlite/migrations.h says why and what checks them), in
  // one BEGIN IMMEDIATE transaction, before the switch to WAL: a migration
  // that fails leaves the file byte for byte as it was (the rollback journal
  // restores it; the journal mode is a header byte).
  core::Result<int> migrate(Conn& writer, int to) override {
    SQLite::Database& db = sqlite_conn(writer).sqlite();
    const StartupWait wait(db, options_.busy_timeout_ms);
    int from = 0;
    core::Status st = core::Status::ok();
    try {
      db.exec("PRAGMA foreign_keys = OFF");
      try {
        SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
        from = apply_migrations(db, to);
        tx.commit();
      } catch (const SQLite::Exception& e) {
        st = translate(e.getExtendedErrorCode(), e.what());
      } catch (const std::exception& e) {
        st = core::Status::internal(e.what());
      }
      db.exec("PRAGMA foreign_keys = ON");
    } catch (const SQLite::Exception& e) {
      if (st) st = translate(e.getExtendedErrorCode(), e.what());
    }
    if (!st) return st;
    return from;
  }

  core::Status prepare_to_serve(Conn& writer) override {
    SQLite::Database& db = sqlite_conn(writer).sqlite();
    const StartupWait wait(db, options_.busy_timeout_ms);
    // The switch to WAL answered SQLITE_BUSY at once, without waiting in
    // the busy handler, in 4 of 12 runs of storage_test's "servers opening
    // one fresh database at once" (peers switching the same new file, or
    // reading it, at the same moment). It is tried again until the start-up
    // wait is spent.
    const auto give_up =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(StartupWait::kMs);
    for (;;) {
      try {
        if (db.execAndGet("PRAGMA journal_mode = WAL").getString() != "wal") {
          return core::Status::unavailable("cannot switch " + options_.path + " to WAL mode");
        }
        // Keep a WAL that grew under a burst from staying large on disk.
        db.exec("PRAGMA journal_size_limit = 67108864");
        return core::Status::ok();
      } catch (const SQLite::Exception& e) {
        if (e.getErrorCode() != SQLITE_BUSY || std::chrono::steady_clock::now() > give_up) {
          return translate(e.getExtendedErrorCode(), e.what());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  core::Result<std::unique_ptr<LeaderLock>> leader_lock() override {
    auto lock = FileLeader::open(options_.path + ".leader");
    if (!lock) return lock.status();
    return std::unique_ptr<LeaderLock>(std::move(*lock));
  }

 private:
  // Start-up waits longer for the write lock than a request does: servers
  // started at once on a new file migrate one after the other, and a
  // migration (table rebuilds included) holds the lock for its whole
  // transaction, then the switch to WAL takes it again. With the request's
  // --busy-timeout (1 s) the last of three sanitized servers on a loaded
  // machine gave up with "database is locked". Restores the request's
  // timeout when it goes.
  class StartupWait {
   public:
    static constexpr int kMs = 60000;
    StartupWait(SQLite::Database& db, int request_ms) : db_(db), request_ms_(request_ms) {
      db_.setBusyTimeout(std::max(kMs, request_ms_));
    }
    ~StartupWait() {
      try {
        db_.setBusyTimeout(request_ms_);
      } catch (const SQLite::Exception&) {
        // sqlite3_busy_timeout() cannot fail on an open connection
      }
    }
    StartupWait(const StartupWait&) = delete;
    StartupWait& operator=(const StartupWait&) = delete;

   private:
    SQLite::Database& db_;
    const int request_ms_;
  };

  const Options options_;
};

}  // namespace

std::unique_ptr<Driver> make_driver(Options options) {
  (void)kMemstatusOff;
  return std::make_unique<SqliteDriver>(std::move(options));
}

SQLite::Database& handle(Conn& conn) {
  return sqlite_conn(conn).sqlite();
}

core::Result<int> peek_schema_version(const std::string& path) {
  if (!std::filesystem::exists(path)) return 0;
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    db.exec("SELECT count(*) FROM sqlite_schema");  // proves it is a database
    return db.execAndGet("PRAGMA user_version").getInt();
  } catch (const std::exception& e) {
    return core::Status::invalid(path + " is not a readable SQLite database: " + e.what());
  }
}

}  // namespace db::sqlite
