#include "db/orders.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

bool transition_order(Tx& tx, Sql sql, std::int64_t id, core::Millis now) {
  auto q = tx.conn().query(sql);
  q.bind_all(id, now);
  return q.exec() == 1;
}

}  // namespace

std::int64_t insert_order(Tx& tx, const NewOrder& order, core::Millis now) {
  std::int64_t id = 0;
  {
    auto q = tx.conn().query(Sql::kInsertOrder);
    q.bind_all(order.email, order.phone, order.total_cents, order.payment_token, now);
    id = q.exec_returning_id();
  }
  for (const auto& item : order.items) {
    auto q = tx.conn().query(Sql::kInsertItem);
    q.bind_all(id, item.sku, item.quantity, item.unit_price_cents);
    q.exec();
  }
  return id;
}

void insert_order_action(Tx& tx, std::int64_t order_id, const std::string& action,
                         const std::string& detail, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertAction);
  q.bind_all(order_id, action, detail, now);
  q.exec();
}

bool mark_order_paid(Tx& tx, std::int64_t id, const std::string& charge_id, core::Millis now) {
  auto q = tx.conn().query(Sql::kMarkPaid);
  q.bind_all(id, charge_id, now);
  return q.exec() == 1;
}

bool mark_order_payment_failed(Tx& tx, std::int64_t id, core::Millis now) {
  return transition_order(tx, Sql::kMarkPaymentFailed, id, now);
}

bool mark_order_ready_to_ship(Tx& tx, std::int64_t id, core::Millis now) {
  return transition_order(tx, Sql::kMarkReadyToShip, id, now);
}

std::optional<OrderRow> find_order(Conn& conn, std::int64_t id) {
  OrderRow o;
  {
    auto q = conn.query(Sql::kFindOrder);
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    o.id = q.int64(0);
    o.state = q.text(1);
    o.email = q.text(2);
    o.phone = q.text(3);
    o.total_cents = q.int64(4);
    o.payment_token = q.text(5);
    if (!q.is_null(6)) o.charge_id = q.text(6);
    o.created_at = q.int64(7);
    o.updated_at = q.int64(8);
  }
  auto q = conn.query(Sql::kListItems);
  q.bind(1, id);
  while (q.step()) {
    o.items.push_back({q.text(0), q.int64(1), q.int64(2)});
  }
  return o;
}

std::optional<std::int64_t> find_order_paid_by(Conn& conn, const std::string& charge_id) {
  auto q = conn.query(Sql::kFindOrderPaidBy);
  q.bind(1, charge_id);
  if (!q.step()) return std::nullopt;
  return q.int64(0);
}

}  // namespace db
