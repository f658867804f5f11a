// The SQLite driver: db::Driver over one database file, through SQLiteCpp.
//
// - Connections: one writer and any number of read-only readers, each opened
//   with foreign keys on, the configured `synchronous`, and temp_store in
//   memory; readers with query_only on. The file is proven to be a database
//   (its schema is read) before anything else.
// - Write transactions are BEGIN IMMEDIATE, so the write lock is taken up
//   front and a transaction never fails half-way with SQLITE_BUSY on its
//   first write (https://sqlite.org/lang_transaction.html). SQLite waits up
//   to `busy_timeout_ms` for a lock another process holds, then throws kBusy.
// - Errors are translated from SQLite's extended result codes: BUSY/LOCKED
//   -> kBusy, FULL -> kStorageFull, CONSTRAINT -> kConflict, anything else
//   -> kInternal with the code in the message.
// - Schema: versioned with PRAGMA user_version (db/sqlite/migrations.h);
//   prepare_to_serve switches the file to WAL after migrating, so a failed
//   migration leaves the file byte for byte as it was.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "db/driver.h"

namespace SQLite {
class Database;
}

namespace db::sqlite {

// PRAGMA synchronous (https://sqlite.org/pragma.html#pragma_synchronous).
// kFull: an acknowledged commit survives power loss. kNormal: it survives a
// process crash; the last commits may be lost on power loss.
enum class Synchronous { kFull, kNormal };

struct Options {
  std::string path;
  Synchronous synchronous = Synchronous::kFull;
  int busy_timeout_ms = 1000;  // SQLite's wait for a lock another process holds, per attempt
  // Test seam: PRAGMA max_page_count on the writer connection (0 = SQLite's
  // default), so tests can fill the "disk" and see SQLITE_FULL.
  std::int64_t max_page_count = 0;
  bool create = true;  // false: a missing file is kNotFound (CLI tools on an existing db)
};

[[nodiscard]] std::unique_ptr<Driver> make_driver(Options options);

// The SQLiteCpp handle behind a connection this driver opened: for the
// driver's own tools and for tests that read the file as SQLite.
SQLite::Database& handle(Conn& conn);

// The schema version of the file at `path` without opening it for writing
// (0 when there is no file). kInvalid when it is not a SQLite database.
[[nodiscard]] core::Result<int> peek_schema_version(const std::string& path);

}  // namespace db::sqlite
