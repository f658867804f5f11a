// The PostgreSQL driver's text for each named statement (db/sql.h).
#pragma once

#include "db/sql.h"

namespace db::pg {

// Never null for a declared name (a missing one fails to compile).
const char* sql_text(Sql name) noexcept;

// Whether `name` picks runnable jobs in claim order (ORDER BY priority,
// run_at, id ... FOR UPDATE SKIP LOCKED). The driver plans those with sorts
// disabled: LockRows sits between the LIMIT and the ORDER BY, so a plan
// that sorts reads and sorts every runnable job (45 ms for 50,000, spilled
// to disk) where the jobs_claimable index scan reads the first LIMIT (0.3
// ms). The planner picked the sort whenever the table's statistics lagged a
// burst of staged jobs (before autovacuum's next ANALYZE).
bool claims_in_index_order(Sql name) noexcept;

}  // namespace db::pg
