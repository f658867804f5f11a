#include "db/products.h"

#include <stdexcept>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

ProductRow product_from(const Row& s) {
  return ProductRow{s.int64(0), s.text(1), s.text(2), s.text(3), s.int64(4), s.int64(5)};
}

ProductMetaRow meta_from(const Row& s) {
  return ProductMetaRow{s.int64(0), s.int64(1), s.text(2), s.int64(3)};
}

}  // namespace

ProductRow insert_product(Tx& tx, const std::string& name, const std::string& owner_email,
                          const std::string& state, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertProduct);
  q.bind_all(name, owner_email, state, now);
  if (!q.step()) throw std::logic_error("INSERT ... RETURNING returned no row");
  ProductRow row = product_from(q);
  q.step();  // to SQLITE_DONE: the statement is finished
  return row;
}

std::optional<ProductRow> transition_product(Tx& tx, std::int64_t id, const std::string& from,
                                             const std::string& to, core::Millis now) {
  auto q = tx.conn().query(Sql::kTransitionProduct);
  q.bind_all(id, from, to, now);
  if (!q.step()) return std::nullopt;
  ProductRow row = product_from(q);
  q.step();
  return row;
}

std::optional<ProductRow> find_product(Conn& conn, std::int64_t id) {
  auto q = conn.query(Sql::kFindProduct);
  q.bind(1, id);
  return q.one(product_from);
}

ProductMetaRow insert_product_meta(Tx& tx, std::int64_t product_id, const std::string& note,
                                   core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertProductMeta);
  q.bind_all(product_id, note, now);
  if (!q.step()) throw std::logic_error("INSERT ... RETURNING returned no row");
  ProductMetaRow row = meta_from(q);
  q.step();
  return row;
}

std::optional<ProductMetaRow> find_product_meta(Conn& conn, std::int64_t meta_id) {
  auto q = conn.query(Sql::kFindProductMeta);
  q.bind(1, meta_id);
  return q.one(meta_from);
}

std::optional<ProductMetaRow> find_product_meta_by_product(Conn& conn, std::int64_t product_id) {
  auto q = conn.query(Sql::kFindProductMetaByProduct);
  q.bind(1, product_id);
  return q.one(meta_from);
}

std::int64_t insert_product_state_change(Tx& tx, std::int64_t product_id,
                                         const std::optional<std::string>& from_state,
                                         const std::string& to_state, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertProductStateChange);
  q.bind_all(product_id, from_state, to_state, now);
  return q.exec_returning_id();
}

std::vector<ProductStateChangeRow> list_product_state_changes(Conn& conn, std::int64_t product_id) {
  auto q = conn.query(Sql::kListProductStateChanges);
  q.bind(1, product_id);
  std::vector<ProductStateChangeRow> out;
  while (q.step()) {
    ProductStateChangeRow row;
    row.id = q.int64(0);
    row.product_id = q.int64(1);
    if (!q.is_null(2)) row.from_state = q.text(2);
    row.to_state = q.text(3);
    row.created_at = q.int64(4);
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace db
