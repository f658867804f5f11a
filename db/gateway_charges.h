// The fake payment gateway's table (tools/fake_gateway.h): one row per gateway
// idempotency key, whatever the outcome, so a replayed request answers what
// the first one did and a key is charged at most once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

struct ChargeRow {
  std::int64_t id = 0;
  std::string charge_id;
  std::string idempotency_key;
  std::int64_t amount_cents = 0;
  std::string token;
  std::string status;  // "succeeded" or "declined"
  core::Millis created_at = 0;
};

// Inserts the charge unless its idempotency key exists (ON CONFLICT DO
// NOTHING); either way returns the row stored under the key.
ChargeRow insert_charge_if_absent(Tx& tx, const ChargeRow& charge, core::Millis now);
std::optional<ChargeRow> find_charge_by_key(Conn& conn, const std::string& idempotency_key);
// Oldest first; every charge when `idempotency_key` is empty, else every
// charge made for that client key: under it exactly, or under a per-operation
// key checkout derived from it ("<key> ac_<random>", db/idempotency.cpp).
std::vector<ChargeRow> list_charges(Conn& conn, const std::string& idempotency_key);

}  // namespace db
