// Schema migrations, versioned with PRAGMA user_version.
//
// Each migration is a numbered SQL script (and, where SQL alone cannot say
// it, a C++ step) applied in one IMMEDIATE transaction together with the bump
// of user_version, so a crash mid-way leaves the file at the previous
// version, never between two. Migrations are append-only: a released one is
// never edited, a change is a new one.
//
// Foreign keys: migrations run with PRAGMA foreign_keys OFF (it cannot change
// inside a transaction, and SQLite's table rebuild procedure needs it off);
// apply_migrations ends with PRAGMA foreign_key_check and throws on any
// violation, so only a consistent schema commits.
#pragma once

#include <string>

#include "core/status.h"

namespace SQLite {
class Database;
}

namespace db::sqlite {

// The version a file is at after every migration of this binary has run.
int latest_schema_version() noexcept;

// Whether the file behind `conn`, at `version` (its PRAGMA user_version), is
// one of ours that this binary may open and migrate: kInvalid, with one line
// naming `path`, for a version newer than this binary, for a non-empty file
// at version 0 (another program's database), or for a file missing a table
// its version must have. A `version` of 0 is read again: another server may
// have migrated the file since. Reads only, in a read transaction of its
// own (outside any transaction on `conn`): call it before anything writes
// (the switch to WAL rewrites the header).
[[nodiscard]] core::Status check_schema_is_ours(SQLite::Database& conn, const std::string& path,
                                                int version);

// Applies, inside the transaction open on `conn`, every migration above the file's current version
// (read inside it) up to and including `to`, then checks foreign keys. Returns the version it
// started from. `to` must not exceed latest_schema_version(). Throws on failure; the caller's
// transaction then rolls back.
int apply_migrations(SQLite::Database& conn, int to);

}  // namespace db::sqlite
