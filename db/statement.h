// db::Stmt and db::Row: a prepared statement and the row it stands on, with
// no engine type in sight. A driver implements db::StmtImpl; callers in db/
// see only these.
//
// Contract
// - A Stmt is leased from its connection's cache by Conn::query and reset
//   (cursor and bindings) when it goes out of scope, ready for the next
//   lease. It belongs to the connection's thread; never keep it past the
//   transaction it was used in.
// - Parameters are numbered from 1 and columns from 0, as in SQL and
//   SQLite's C API.
// - bind(i, const std::string&) does not copy: the string must outlive the
//   statement's last step(). A temporary (an rvalue) is copied instead.
// - Every engine error is thrown as db::Error carrying the Status its driver
//   translated it to (SQLite's extended codes; PostgreSQL's SQLSTATE
//   classes). Database::write and read turn it back into a Status, so no
//   exception leaves db/.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/status.h"

namespace db {

// An engine error, already translated by the driver that met it.
class Error : public std::runtime_error {
 public:
  explicit Error(core::Status status)
      : std::runtime_error(status.message()), status_(std::move(status)) {}
  const core::Status& status() const noexcept { return status_; }

 private:
  core::Status status_;
};

// One prepared statement, as a driver implements it. Methods throw db::Error.
class StmtImpl {
 public:
  virtual ~StmtImpl() = default;
  virtual void bind_int64(int index, std::int64_t value) = 0;
  virtual void bind_double(int index, double value) = 0;
  // copy=false: `value` outlives the statement's use (see Stmt::bind).
  virtual void bind_text(int index, const std::string& value, bool copy) = 0;
  // A list of strings, for `IN (list)` (SQLite: a JSON array for json_each;
  // PostgreSQL: a text[] for `= ANY`).
  virtual void bind_text_list(int index, const std::vector<std::string>& values) = 0;
  virtual void bind_null(int index) = 0;
  // Advances to the next row: true while one is available.
  virtual bool step() = 0;
  // Runs the statement to completion; returns the rows it changed.
  virtual int exec() = 0;
  // Runs the statement, perhaps later: no answer is read (Stmt::exec_pipelined).
  virtual void exec_pipelined() { (void)exec(); }
  virtual std::int64_t column_int64(int col) const = 0;
  virtual double column_double(int col) const = 0;
  virtual std::string column_text(int col) const = 0;
  virtual bool column_is_null(int col) const = 0;
  // Back to the start with no bindings; cannot fail.
  virtual void reset() noexcept = 0;
};

// The current row of a statement that step() moved onto.
class Row {
 public:
  std::int64_t int64(int col) const { return s_->column_int64(col); }
  int int32(int col) const { return static_cast<int>(s_->column_int64(col)); }
  double real(int col) const { return s_->column_double(col); }
  std::string text(int col) const { return s_->column_text(col); }
  bool is_null(int col) const { return s_->column_is_null(col); }
  std::optional<std::int64_t> opt_int64(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::int64_t>(int64(col));
  }
  std::optional<std::string> opt_text(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
  }

 protected:
  explicit Row(StmtImpl& s) noexcept : s_(&s) {}
  StmtImpl* s_;
};

class Stmt : public Row {
 public:
  explicit Stmt(StmtImpl& s) noexcept : Row(s) {}
  ~Stmt() { s_->reset(); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int index, std::int64_t value) {
    s_->bind_int64(index, value);
    return *this;
  }
  Stmt& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Stmt& bind(int index, bool value) { return bind(index, static_cast<std::int64_t>(value)); }
  Stmt& bind(int index, double value) {
    s_->bind_double(index, value);
    return *this;
  }
  Stmt& bind(int index, const std::string& value) {
    s_->bind_text(index, value, /*copy=*/false);
    return *this;
  }
  Stmt& bind(int index, std::string&& value) {
    s_->bind_text(index, value, /*copy=*/true);
    return *this;
  }
  Stmt& bind(int index, const char* value) { return bind(index, std::string(value)); }
  Stmt& bind(int index, const std::vector<std::string>& values) {
    s_->bind_text_list(index, values);
    return *this;
  }
  Stmt& bind(int index, std::nullopt_t) {
    s_->bind_null(index);
    return *this;
  }
  template <class T>
  Stmt& bind(int index, const std::optional<T>& value) {
    if (!value) return bind(index, std::nullopt);
    return bind(index, *value);
  }

  // Binds `values` to ?1, ?2 ... in order (each as bind(i, value) would:
  // an lvalue string is not copied, a temporary is).
  template <class... Ts>
  Stmt& bind_all(Ts&&... values) {
    int index = 0;
    (bind(++index, std::forward<Ts>(values)), ...);
    return *this;
  }

  bool step() { return s_->step(); }
  // Every remaining row, each read by `from(row)`.
  template <class Fn>
  auto all(Fn&& from) {
    std::vector<std::decay_t<std::invoke_result_t<Fn&, const Row&>>> out;
    while (step()) out.push_back(from(row()));
    return out;
  }
  // The next row read by `from(row)`, or nullopt when there is none.
  template <class Fn>
  auto one(Fn&& from) -> std::optional<std::decay_t<std::invoke_result_t<Fn&, const Row&>>> {
    if (!step()) return std::nullopt;
    return from(row());
  }
  int exec() { return s_->exec(); }
  // For a statement whose answer nobody reads (an audit row). The driver
  // may send it with the transaction's next statement, in one round trip
  // (PostgreSQL; SQLite runs it now). A failure then fails that statement,
  // or at the latest the RELEASE of the enclosing savepoint or the COMMIT:
  // still the phase that ran it, and still before anything commits. Only
  // inside a write transaction.
  void exec_pipelined() { s_->exec_pipelined(); }
  // For `INSERT ... RETURNING id`: runs the statement to completion and
  // returns the id of the row it inserted (0 when it inserted none).
  std::int64_t exec_returning_id() {
    const std::int64_t id = step() ? int64(0) : 0;
    exec();
    return id;
  }
  const Row& row() const noexcept { return *this; }
};

}  // namespace db
