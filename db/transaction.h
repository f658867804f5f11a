// db::TxScope and db::SavepointScope: the one way a transaction or a
// savepoint is opened and closed (RAII, as the C++ SQLite wrapper's Transaction).
//
// - TxScope begins in its constructor (throws db::Error; kBusy when the write
//   lock could not be had within the driver's wait), commits in commit()
//   (throws db::Error), and rolls back in its noexcept destructor unless
//   committed. A rollback that fails leaves the engine to roll back (SQLite
//   does when the next BEGIN runs or the connection closes).
// - SavepointScope opens a savepoint nested in the open transaction (or in
//   an enclosing SavepointScope) and undoes everything since in rollback()
//   or in its destructor unless released. rollback() reports whether the
//   undo worked: after some I/O and full-disk errors SQLite has already
//   rolled back the whole transaction (https://sqlite.org/lang_transaction.html,
//   "Response To Errors Within A Transaction"), and then nothing can be
//   undone to a savepoint.
// Both are for the thread that owns the connection, and neither is copyable.
#pragma once

#include "db/conn.h"

namespace db {

class TxScope {
 public:
  TxScope(Conn& conn, TxMode mode) : conn_(conn) { conn_.begin(mode); }
  ~TxScope() {
    if (!done_) conn_.rollback();
  }
  TxScope(const TxScope&) = delete;
  TxScope& operator=(const TxScope&) = delete;

  void commit() {
    conn_.commit();
    done_ = true;
  }

 private:
  Conn& conn_;
  bool done_ = false;
};

class SavepointScope {
 public:
  explicit SavepointScope(Conn& conn) : conn_(conn), depth_(conn.savepoint_depth_ + 1) {
    conn_.savepoint(depth_);
    conn_.savepoint_depth_ = depth_;
  }
  ~SavepointScope() {
    if (!done_) (void)rollback();
  }
  SavepointScope(const SavepointScope&) = delete;
  SavepointScope& operator=(const SavepointScope&) = delete;

  // Keeps what was written since the savepoint (it commits with the
  // transaction). Throws db::Error.
  void release() {
    conn_.release(depth_);
    done_ = true;
    conn_.savepoint_depth_ = depth_ - 1;
  }
  // Undoes what was written since the savepoint; false when it could not
  // (the engine had already rolled back the whole transaction).
  [[nodiscard]] bool rollback() noexcept {
    done_ = true;
    conn_.savepoint_depth_ = depth_ - 1;
    if (!conn_.in_transaction()) return false;
    try {
      conn_.rollback_to(depth_);
      return true;
    } catch (...) {
      return false;
    }
  }

 private:
  Conn& conn_;
  const int depth_;
  bool done_ = false;
};

}  // namespace db
