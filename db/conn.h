// db::Conn: one SQLite connection and its prepared statements. Private to db/.
//
// Statements are prepared on first use and cached for the connection's life,
// keyed by the address of their named SQL constant (db/sql.h), so each is
// compiled once per connection. A Conn is leased to one thread at a time.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <string>
#include <unordered_map>

namespace db {

class Conn {
 public:
  explicit Conn(std::unique_ptr<SQLite::Database> sqlite) : db_(std::move(sqlite)) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  SQLite::Database& sqlite() noexcept { return *db_; }

  // A cached statement, reset and unbound when the Query goes out of scope.
  class Query {
   public:
    explicit Query(SQLite::Statement& s) noexcept : s_(s) {}
    ~Query() {
      s_.tryReset();
      try {
        s_.clearBindings();  // sqlite3_clear_bindings cannot fail; the wrapper may throw in theory
      } catch (...) {
      }
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    SQLite::Statement* operator->() noexcept { return &s_; }
    SQLite::Statement& operator*() noexcept { return s_; }

   private:
    SQLite::Statement& s_;
  };

  // `sql` must be a named constant with static storage (db/sql.h).
  Query query(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      it = cache_.emplace(sql, std::make_unique<SQLite::Statement>(*db_, sql)).first;
    }
    return Query(*it->second);
  }

  // One-off statements (pragmas, migrations): not cached.
  void exec(const std::string& sql) { db_->exec(sql); }

 private:
  std::unique_ptr<SQLite::Database> db_;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache_;
};

}  // namespace db
