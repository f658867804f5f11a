// db::Driver: the seam between the database layer and one engine. A driver
// alone connects, holds the SQL text of every named statement (db/sql.h),
// translates the engine's errors to core::Status, and owns the schema and
// its migrations. db::Database (db/database.h) builds every transaction on
// top of it; nothing outside a driver's folder names its engine.
//
// The SQLite driver is db/sqlite/driver.h. Methods are called from one
// thread at a time (Database::open, then each connection's own thread).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "db/conn.h"
#include "db/leader.h"

namespace db {

// A subscription to other processes' announcements (Driver::listen): it
// ends when destroyed.
class Listener {
 public:
  virtual ~Listener() = default;
};

enum class ConnRole {
  kWriter,  // the one connection that writes (or, on an engine with many writers, one of them)
  kReader,  // read-only; a pool of them serves reads beside the writer
};

class Driver {
 public:
  virtual ~Driver() = default;

  // What the driver serves, for messages ("/var/lib/aftercommit/db.sqlite").
  virtual const std::string& target() const noexcept = 0;

  // A new connection. Errors name the target and the reason: kNotFound (no
  // database and creating is not allowed), kUnavailable (read-only file,
  // server down), kInvalid (not a database).
  [[nodiscard]] virtual core::Result<std::unique_ptr<Conn>> connect(ConnRole role) = 0;

  // The schema version the database is at (0: empty).
  [[nodiscard]] virtual core::Result<int> schema_version(Conn& conn) = 0;
  // The version every migration of this binary leads to.
  virtual int latest_schema_version() const noexcept = 0;
  // Whether the database at `version` is one of ours that this binary may
  // open and migrate (kInvalid naming the target otherwise). Reads only.
  [[nodiscard]] virtual core::Status check_schema_is_ours(Conn& conn, int version) = 0;
  // Applies every migration above the current version up to `to`, all or
  // nothing, on the writer connection, before it serves. Returns the version
  // it started from.
  [[nodiscard]] virtual core::Result<int> migrate(Conn& writer, int to) = 0;
  // Once migrated, readies the writer to serve (SQLite: the switch to WAL).
  [[nodiscard]] virtual core::Status prepare_to_serve(Conn& writer) = 0;

  // This engine's way to elect one leader among the processes serving the
  // database (db/leader.h). Errors: kUnavailable naming what could not be
  // opened.
  [[nodiscard]] virtual core::Result<std::unique_ptr<LeaderLock>> leader_lock() = 0;

  // Calls `on_wake` on a thread of the driver's whenever a process (this
  // one included) committed a transaction that announced staged jobs
  // (announce_jobs), and once after each (re)connection,
  // until the handle is destroyed (which joins that thread). nullptr when
  // the engine has no such hint. Never fails: a listener that cannot reach
  // the database keeps trying, and calls on_wake once it can again.
  [[nodiscard]] virtual std::unique_ptr<Listener> listen(std::function<void()> on_wake) {
    (void)on_wake;
    return nullptr;
  }

  // Announces to the other processes' listeners that the write transaction
  // open on `writer` staged jobs: called once per such transaction, just
  // before its COMMIT (Tx::announce_jobs), on the thread that owns
  // `writer`. Delivered only if that transaction commits. Throws db::Error
  // like any statement. Does nothing on an engine without such hints.
  virtual void announce_jobs(Conn& writer) { (void)writer; }
};

}  // namespace db
