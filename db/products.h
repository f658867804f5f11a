// Products, their meta row and the audit of their state changes. Functions
// throw inside db/ and are called only from within Database::write /
// Database::read, which translate failures into Status.
//
// The state is stored as its name (services::ProductState draws the machine);
// this file only stores it. A state change is one conditional UPDATE fenced by
// the state it leaves from, so two concurrent changes of one product cannot
// both succeed: the second finds the row already moved and changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

struct ProductRow {
  std::int64_t id = 0;
  std::string name;
  std::string owner_email;
  std::string state;
  core::Millis created_at = 0;
  core::Millis updated_at = 0;
};

struct ProductMetaRow {
  std::int64_t id = 0;
  std::int64_t product_id = 0;
  std::string note;
  core::Millis created_at = 0;
};

struct ProductStateChangeRow {
  std::int64_t id = 0;
  std::int64_t product_id = 0;
  std::optional<std::string> from_state;  // nullopt for the creation
  std::string to_state;
  core::Millis created_at = 0;
};

// Inserts a product in `state` and returns it.
ProductRow insert_product(Tx& tx, const std::string& name, const std::string& owner_email,
                          const std::string& state, core::Millis now);

// from -> to, only when the row is in `from`: UPDATE ... WHERE id = ? AND
// state = ? RETURNING. nullopt when no row changed (no such product, or it is
// in another state); then nothing was written.
std::optional<ProductRow> transition_product(Tx& tx, std::int64_t id, const std::string& from,
                                             const std::string& to, core::Millis now);

std::optional<ProductRow> find_product(Conn& conn, std::int64_t id);

// UNIQUE(product_id): a second meta row for one product throws a constraint
// error (Database::write turns it into kConflict).
ProductMetaRow insert_product_meta(Tx& tx, std::int64_t product_id, const std::string& note,
                                   core::Millis now);
std::optional<ProductMetaRow> find_product_meta(Conn& conn, std::int64_t meta_id);
std::optional<ProductMetaRow> find_product_meta_by_product(Conn& conn, std::int64_t product_id);

std::int64_t insert_product_state_change(Tx& tx, std::int64_t product_id,
                                         const std::optional<std::string>& from_state,
                                         const std::string& to_state, core::Millis now);
// Oldest first.
std::vector<ProductStateChangeRow> list_product_state_changes(Conn& conn, std::int64_t product_id);

}  // namespace db
