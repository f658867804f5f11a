// db::Conn: one connection to the database and its prepared statements, as
// a driver implements it (db/sqlite/ for SQLite).
//
// - query(name) returns the statement `name` (db/sql.h), prepared on its
//   first use and cached for the connection's life, so each is compiled once
//   per connection. The driver owns the SQL text of each name.
// - A Conn is used by one thread at a time (leased by Database::read or owned
//   by the writer); its statements never cross connections.
// - Transaction control is for db::TxScope and db::SavepointScope
//   (db/transaction.h), the only callers: no BEGIN/COMMIT text outside the
//   drivers.
// - Every engine error is thrown as db::Error, already translated.
#pragma once

#include <string>

#include "db/sql.h"
#include "db/statement.h"

namespace db {

// How a transaction takes its locks (SQLite's BEGIN IMMEDIATE / DEFERRED;
// https://sqlite.org/lang_transaction.html).
enum class TxMode {
  kWrite,  // takes the write lock at begin: busy, if ever, only there
  kRead,   // a read snapshot; never writes
};

class Conn {
 public:
  virtual ~Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // The statement `name`, reset when the Stmt goes out of scope.
  virtual Stmt query(Sql name) = 0;

  // One-off SQL, not cached: the driver's own set-up, and tests that inject
  // faults. Nothing in the program's request paths uses it.
  virtual void exec(const std::string& sql) = 0;

  // Whether a transaction is open (it may have been rolled back by the engine
  // itself after an I/O error).
  virtual bool in_transaction() const noexcept = 0;

 protected:
  Conn() = default;

 private:
  friend class TxScope;
  friend class SavepointScope;
  virtual void begin(TxMode mode) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;  // no-op when none is open
  // Savepoints nest: `depth` 1 is the outermost, inside the transaction.
  virtual void savepoint(int depth) = 0;
  virtual void release(int depth) = 0;
  virtual void rollback_to(int depth) = 0;  // and release it
  int savepoint_depth_ = 0;                 // SavepointScope's own
};

}  // namespace db
