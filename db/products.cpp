#include "db/products.h"

#include <stdexcept>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kInsertProduct[] =
    "INSERT INTO products (name, owner_email, state, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?4) "
    "RETURNING id, name, owner_email, state, created_at, updated_at";
constexpr char kTransitionProduct[] =
    "UPDATE products SET state = ?3, updated_at = ?4 WHERE id = ?1 AND state = ?2 "
    "RETURNING id, name, owner_email, state, created_at, updated_at";
constexpr char kFindProduct[] =
    "SELECT id, name, owner_email, state, created_at, updated_at FROM products WHERE id = ?1";
constexpr char kInsertProductMeta[] =
    "INSERT INTO product_meta (product_id, note, created_at) VALUES (?1, ?2, ?3) "
    "RETURNING id, product_id, note, created_at";
constexpr char kFindProductMeta[] =
    "SELECT id, product_id, note, created_at FROM product_meta WHERE id = ?1";
constexpr char kFindProductMetaByProduct[] =
    "SELECT id, product_id, note, created_at FROM product_meta WHERE product_id = ?1";
constexpr char kInsertProductStateChange[] =
    "INSERT INTO product_state_changes (product_id, from_state, to_state, created_at) "
    "VALUES (?1, ?2, ?3, ?4)";
constexpr char kListProductStateChanges[] =
    "SELECT id, product_id, from_state, to_state, created_at FROM product_state_changes "
    "WHERE product_id = ?1 ORDER BY id";

ProductRow product_from(SQLite::Statement& s) {
  return ProductRow{s.getColumn(0).getInt64(),  s.getColumn(1).getString(),
                    s.getColumn(2).getString(), s.getColumn(3).getString(),
                    s.getColumn(4).getInt64(),  s.getColumn(5).getInt64()};
}

ProductMetaRow meta_from(SQLite::Statement& s) {
  return ProductMetaRow{s.getColumn(0).getInt64(), s.getColumn(1).getInt64(),
                        s.getColumn(2).getString(), s.getColumn(3).getInt64()};
}

}  // namespace

ProductRow insert_product(Tx& tx, const std::string& name, const std::string& owner_email,
                          const std::string& state, core::Millis now) {
  auto q = tx.conn().query(kInsertProduct);
  q->bindNoCopy(1, name);
  q->bindNoCopy(2, owner_email);
  q->bindNoCopy(3, state);
  q->bind(4, static_cast<std::int64_t>(now));
  if (!q->executeStep()) throw std::logic_error("INSERT ... RETURNING returned no row");
  ProductRow row = product_from(*q);
  q->executeStep();  // to SQLITE_DONE: the statement is finished
  return row;
}

std::optional<ProductRow> transition_product(Tx& tx, std::int64_t id, const std::string& from,
                                             const std::string& to, core::Millis now) {
  auto q = tx.conn().query(kTransitionProduct);
  q->bind(1, id);
  q->bindNoCopy(2, from);
  q->bindNoCopy(3, to);
  q->bind(4, static_cast<std::int64_t>(now));
  if (!q->executeStep()) return std::nullopt;
  ProductRow row = product_from(*q);
  q->executeStep();
  return row;
}

std::optional<ProductRow> find_product(Conn& conn, std::int64_t id) {
  auto q = conn.query(kFindProduct);
  q->bind(1, id);
  if (!q->executeStep()) return std::nullopt;
  return product_from(*q);
}

ProductMetaRow insert_product_meta(Tx& tx, std::int64_t product_id, const std::string& note,
                                   core::Millis now) {
  auto q = tx.conn().query(kInsertProductMeta);
  q->bind(1, product_id);
  q->bindNoCopy(2, note);
  q->bind(3, static_cast<std::int64_t>(now));
  if (!q->executeStep()) throw std::logic_error("INSERT ... RETURNING returned no row");
  ProductMetaRow row = meta_from(*q);
  q->executeStep();
  return row;
}

std::optional<ProductMetaRow> find_product_meta(Conn& conn, std::int64_t meta_id) {
  auto q = conn.query(kFindProductMeta);
  q->bind(1, meta_id);
  if (!q->executeStep()) return std::nullopt;
  return meta_from(*q);
}

std::optional<ProductMetaRow> find_product_meta_by_product(Conn& conn, std::int64_t product_id) {
  auto q = conn.query(kFindProductMetaByProduct);
  q->bind(1, product_id);
  if (!q->executeStep()) return std::nullopt;
  return meta_from(*q);
}

std::int64_t insert_product_state_change(Tx& tx, std::int64_t product_id,
                                         const std::optional<std::string>& from_state,
                                         const std::string& to_state, core::Millis now) {
  auto q = tx.conn().query(kInsertProductStateChange);
  q->bind(1, product_id);
  if (from_state) {
    q->bindNoCopy(2, *from_state);
  } else {
    q->bind(2);  // NULL
  }
  q->bindNoCopy(3, to_state);
  q->bind(4, static_cast<std::int64_t>(now));
  q->exec();
  return tx.conn().sqlite().getLastInsertRowid();
}

std::vector<ProductStateChangeRow> list_product_state_changes(Conn& conn, std::int64_t product_id) {
  auto q = conn.query(kListProductStateChanges);
  q->bind(1, product_id);
  std::vector<ProductStateChangeRow> out;
  while (q->executeStep()) {
    ProductStateChangeRow row;
    row.id = q->getColumn(0).getInt64();
    row.product_id = q->getColumn(1).getInt64();
    if (!q->getColumn(2).isNull()) row.from_state = q->getColumn(2).getString();
    row.to_state = q->getColumn(3).getString();
    row.created_at = q->getColumn(4).getInt64();
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace db
