// The PostgreSQL driver's text for each named statement (db/sql.h).
#pragma once

#include "db/sql.h"

namespace db::pg {

// Never null for a declared name (a missing one fails to compile).
const char* sql_text(Sql name) noexcept;

}  // namespace db::pg
