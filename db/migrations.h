// Schema migrations, versioned with PRAGMA user_version.
//
// Each migration is a numbered SQL script applied in its own IMMEDIATE
// transaction together with the bump of user_version, so a crash mid-way
// leaves the file at the previous version, never between two. Migrations are
// append-only: a released one is never edited, a change is a new one.
#pragma once

#include "core/status.h"

namespace db {

class Tx;

// The version a file is at after every migration of this binary has run.
int latest_schema_version() noexcept;

// Applies, inside `tx`, every migration above `from` up to and including `to`.
// `to` must not exceed latest_schema_version().
void apply_migrations(Tx& tx, int from, int to);

}  // namespace db
