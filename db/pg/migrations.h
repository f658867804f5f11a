// The PostgreSQL schema: one migration chain of its own, recorded one row
// per applied version in the table schema_migrations (version, name,
// applied_at).
//
// Versions name the same schema on both engines: the chain starts at 7, the
// SQLite file's versions 1..7 in one step, and a later change is the next
// number in each driver's chain. Migrations are append-only; the driver
// applies them in one transaction under an advisory lock (pg_advisory_lock,
// taken before the transaction begins: PgDriver), so a crash
// or a failure leaves the database at the previous version (PostgreSQL's DDL
// is transactional) and several nodes starting at once migrate once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace db::pg {

// What the migrations need of a connection. Both throw db::Error.
struct Session {
  // One statement with $N text parameters: the first column of its first
  // row, nullopt for no row or NULL.
  std::function<std::optional<std::string>(const char*, const std::vector<const char*>&)> scalar;
  // A script of several statements, no parameters.
  std::function<void(const char*)> exec;
};

int latest_schema_version() noexcept;

// Whether the database at `version` is ours (kInvalid naming `target`
// otherwise): not newer than this binary, not another program's tables at
// version 0, no table missing that its version must have. Reads only.
[[nodiscard]] core::Status check_schema_is_ours(const Session& s, const std::string& target,
                                                int version);

// Inside the open transaction that holds the migration lock: creates
// schema_migrations if absent, applies every version above the recorded
// one up to `to`, and returns the version it started from.
int apply_migrations(const Session& s, int to);

}  // namespace db::pg
