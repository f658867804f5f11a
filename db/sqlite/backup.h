// db::sqlite::backup and db::sqlite::restore: consistent copies of a live database file, and
// putting one back. The only code that knows how a SQLite file is copied.
//
// How a backup works, and why it is consistent while writers keep going
// - The source is opened on its own read-only connection, which opens a read
//   transaction first and holds it to the end. In WAL mode that pins one
//   snapshot: every commit that returned before the backup started is in it,
//   none that came later is, and writers are never blocked (readers do not
//   block writers in WAL). Without the pinned snapshot, SQLite's backup API
//   restarts from page 1 whenever another connection commits, so a busy
//   server would keep a stepped backup from ever finishing.
// - Pages are copied with sqlite3_backup_step, `pages_per_step` at a time,
//   sleeping `pause_ms` between steps, so the copy takes only part of the
//   disk's bandwidth and of a core. The cost: while the snapshot is pinned,
//   checkpoints cannot move the WAL past it, so the WAL grows with what is
//   written during the backup (journal_size_limit shrinks it afterwards).
// - The copy is written to a hidden temporary name in the target's directory
//   (".NAME.tmp-XXXXXX"), switched to rollback-journal mode (one
//   self-contained file, no -wal/-shm beside it), checked with PRAGMA
//   integrity_check and its schema version, fsynced, renamed onto the final
//   name, and the directory fsynced. Any failure (a full disk, a corrupt
//   page, a cancel) deletes the temporary file: the final name either does
//   not change or is a complete, checked copy. An existing file under the
//   final name is replaced only by that rename.
//
// Restore is the same copy in the other direction, from a backup file to a
// temporary name beside the database, checked the same way (integrity, a
// schema version this binary knows), then swapped in: the live file is
// claimed exclusively (refused with kConflict while any other connection has
// it open: a server, a shell, `aftercommit stats`), stale -wal, -shm and
// -journal files are removed, and the copy is renamed onto the database's
// name. A stale WAL left beside a restored file would be replayed into it,
// so they go first. The backup file itself is only read (opened immutable
// when nothing sits beside it, so not even a -shm is created).
//
// Threads: each call opens its own connections and may run on any thread,
// beside a Database on the same file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace db::sqlite {

struct CopyOptions {
  int pages_per_step = 1024;   // 4 MiB at SQLite's default page size
  core::Millis pause_ms = 20;  // sleep between steps, so writers get the disk and the CPU
  // The copy is flushed to disk (fdatasync) every this many pages, so that
  // the final fsync does not push a whole database through the disk queue
  // at once, in front of the server's own commits. 0 = only at the end.
  int sync_every_pages = 8192;  // 32 MiB at 4 KiB pages
  int busy_timeout_ms = 1000;
  // Checked between steps; true stops the copy with kUnavailable and the
  // temporary file deleted (a server shutting down).
  // Also interrupts the integrity_check that follows the copy.
  std::function<bool()> cancelled;
};

struct CopyReport {
  int schema_version = 0;
  std::int64_t pages = 0;
  std::int64_t bytes = 0;  // size of the final file
  int steps = 0;
  core::Millis copy_ms = 0;    // the stepped copy (the snapshot was held this long)
  core::Millis verify_ms = 0;  // integrity_check and the fsyncs
};

// Writes a consistent copy of the database at `source` (a live one is fine)
// to `target`. Errors: kNotFound (no source, or no target directory),
// kInvalid (not a database, a schema newer than this binary, or `target`
// naming the source itself), kStorageFull
// (the target's disk filled up), kUnavailable (cancelled), kInternal (an I/O
// error or a copy that fails integrity_check). `target` is untouched on error.
[[nodiscard]] core::Result<CopyReport> backup(const std::string& source, const std::string& target,
                                              const CopyOptions& options = {});

// Replaces the database at `db_path` (which may not exist yet) with a checked
// copy of the backup file `from`. Errors: kNotFound (no file), kInvalid (not
// an aftercommit database, corrupt, or a schema newer than this binary),
// kConflict (another connection has `db_path` open), kStorageFull, kInternal.
// On error neither `from` nor `db_path` has changed. The restored file gets
// the replaced file's mode (and, when run as root, its owner), so that the
// service can still open it.
[[nodiscard]] core::Result<CopyReport> restore(const std::string& from, const std::string& db_path,
                                               const CopyOptions& options = {});

}  // namespace db::sqlite
