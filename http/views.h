// JSON representations of the API's resources (API.md field names).
#pragma once

#include <nlohmann/json.hpp>

#include "db/jobs.h"
#include "db/mailbox.h"
#include "db/orders.h"
#include "db/users.h"
#include "services/anagrams.h"
#include "services/products.h"

namespace app {

nlohmann::json user_json(const db::UserRow& user);
nlohmann::json user_action_json(const db::UserActionRow& action);
nlohmann::json job_json(const db::JobRow& job);
nlohmann::json message_json(const db::MessageRow& message);
// {"id", "name", "owner_email", "state", "meta": {"id", "note"} or null, "created_at"}
nlohmann::json product_json(const services::Product& product);
nlohmann::json anagram_group_json(const services::AnagramGroup& group);
nlohmann::json order_json(const db::OrderRow& order);

}  // namespace app
