// The JSON shape of the counts, shared by GET /api/stats and `aftercommit stats --json`.
#pragma once

#include <nlohmann/json.hpp>

#include "db/stats.h"

namespace app {

// {"users", "user_actions", "messages", "jobs": {state: n, every state},
//  "jobs_by_kind": [{"kind", "state", "count"}]}
nlohmann::json counts_json(const db::Counts& counts);

}  // namespace app
