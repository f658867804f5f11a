// Orders, their items and their audit log (order_actions). The lifecycle is
// drawn in services/checkout.h; each transition here is one conditional
// UPDATE that reports whether it moved the row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

struct OrderItemRow {
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t unit_price_cents = 0;
};

struct NewOrder {
  std::string email;
  std::string phone;
  std::int64_t total_cents = 0;
  std::string payment_token;
  std::vector<OrderItemRow> items;
};

struct OrderRow {
  std::int64_t id = 0;
  std::string state;
  std::string email;
  std::string phone;
  std::int64_t total_cents = 0;
  std::string payment_token;
  std::optional<std::string> charge_id;
  std::vector<OrderItemRow> items;
  core::Millis created_at = 0;
  core::Millis updated_at = 0;
};

// Inserts the order (state pending) and its items; returns its id.
std::int64_t insert_order(Tx& tx, const NewOrder& order, core::Millis now);
// Appends to the audit log; each action at most once per order (UNIQUE).
void insert_order_action(Tx& tx, std::int64_t order_id, const std::string& action,
                         const std::string& detail, core::Millis now);

// pending -> paid with the charge id.
bool mark_order_paid(Tx& tx, std::int64_t id, const std::string& charge_id, core::Millis now);
// pending -> payment_failed.
bool mark_order_payment_failed(Tx& tx, std::int64_t id, core::Millis now);
// paid -> ready_to_ship.
bool mark_order_ready_to_ship(Tx& tx, std::int64_t id, core::Millis now);

std::optional<OrderRow> find_order(Conn& conn, std::int64_t id);
// The order `charge_id` pays, if any. A charge pays at most one order (the
// schema's trigger orders_one_order_per_charge refuses a second).
std::optional<std::int64_t> find_order_paid_by(Conn& conn, const std::string& charge_id);

}  // namespace db
