#include "db/orders.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kInsertOrder[] =
    "INSERT INTO orders (email, phone, total_cents, payment_token, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
constexpr char kInsertItem[] =
    "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) VALUES (?1, ?2, ?3, ?4)";
constexpr char kInsertAction[] =
    "INSERT INTO order_actions (order_id, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)";
constexpr char kMarkPaid[] =
    "UPDATE orders SET state = 'paid', charge_id = ?2, updated_at = ?3 "
    "WHERE id = ?1 AND state = 'pending'";
constexpr char kMarkPaymentFailed[] =
    "UPDATE orders SET state = 'payment_failed', updated_at = ?2 "
    "WHERE id = ?1 AND state = 'pending'";
constexpr char kMarkReadyToShip[] =
    "UPDATE orders SET state = 'ready_to_ship', updated_at = ?2 WHERE id = ?1 AND state = 'paid'";
constexpr char kFindOrder[] =
    "SELECT id, state, email, phone, total_cents, payment_token, charge_id, created_at, "
    "updated_at FROM orders WHERE id = ?1";
constexpr char kFindOrderPaidBy[] = "SELECT id FROM orders WHERE charge_id = ?1 LIMIT 1";
constexpr char kListItems[] =
    "SELECT sku, quantity, unit_price_cents FROM order_items WHERE order_id = ?1 ORDER BY id";

bool transition(Tx& tx, const char* sql, std::int64_t id, core::Millis now) {
  auto q = tx.conn().query(sql);
  q->bind(1, id);
  q->bind(2, static_cast<std::int64_t>(now));
  return q->exec() == 1;
}

}  // namespace

std::int64_t insert_order(Tx& tx, const NewOrder& order, core::Millis now) {
  std::int64_t id = 0;
  {
    auto q = tx.conn().query(kInsertOrder);
    q->bindNoCopy(1, order.email);
    q->bindNoCopy(2, order.phone);
    q->bind(3, order.total_cents);
    q->bindNoCopy(4, order.payment_token);
    q->bind(5, static_cast<std::int64_t>(now));
    q->exec();
    id = tx.conn().sqlite().getLastInsertRowid();
  }
  for (const auto& item : order.items) {
    auto q = tx.conn().query(kInsertItem);
    q->bind(1, id);
    q->bindNoCopy(2, item.sku);
    q->bind(3, item.quantity);
    q->bind(4, item.unit_price_cents);
    q->exec();
  }
  return id;
}

void insert_order_action(Tx& tx, std::int64_t order_id, const std::string& action,
                         const std::string& detail, core::Millis now) {
  auto q = tx.conn().query(kInsertAction);
  q->bind(1, order_id);
  q->bindNoCopy(2, action);
  q->bindNoCopy(3, detail);
  q->bind(4, static_cast<std::int64_t>(now));
  q->exec();
}

bool mark_order_paid(Tx& tx, std::int64_t id, const std::string& charge_id, core::Millis now) {
  auto q = tx.conn().query(kMarkPaid);
  q->bind(1, id);
  q->bindNoCopy(2, charge_id);
  q->bind(3, static_cast<std::int64_t>(now));
  return q->exec() == 1;
}

bool mark_order_payment_failed(Tx& tx, std::int64_t id, core::Millis now) {
  return transition(tx, kMarkPaymentFailed, id, now);
}

bool mark_order_ready_to_ship(Tx& tx, std::int64_t id, core::Millis now) {
  return transition(tx, kMarkReadyToShip, id, now);
}

std::optional<OrderRow> find_order(Conn& conn, std::int64_t id) {
  OrderRow o;
  {
    auto q = conn.query(kFindOrder);
    q->bind(1, id);
    if (!q->executeStep()) return std::nullopt;
    o.id = q->getColumn(0).getInt64();
    o.state = q->getColumn(1).getString();
    o.email = q->getColumn(2).getString();
    o.phone = q->getColumn(3).getString();
    o.total_cents = q->getColumn(4).getInt64();
    o.payment_token = q->getColumn(5).getString();
    if (!q->getColumn(6).isNull()) o.charge_id = q->getColumn(6).getString();
    o.created_at = q->getColumn(7).getInt64();
    o.updated_at = q->getColumn(8).getInt64();
  }
  auto q = conn.query(kListItems);
  q->bind(1, id);
  while (q->executeStep()) {
    o.items.push_back(
        {q->getColumn(0).getString(), q->getColumn(1).getInt64(), q->getColumn(2).getInt64()});
  }
  return o;
}

std::optional<std::int64_t> find_order_paid_by(Conn& conn, const std::string& charge_id) {
  auto q = conn.query(kFindOrderPaidBy);
  q->bindNoCopy(1, charge_id);
  if (!q->executeStep()) return std::nullopt;
  return q->getColumn(0).getInt64();
}

}  // namespace db
