#include "db/gateway_charges.h"

#include <stdexcept>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

ChargeRow charge_from(const Row& s) {
  return ChargeRow{s.int64(0), s.text(1), s.text(2), s.int64(3), s.text(4), s.text(5), s.int64(6)};
}

}  // namespace

ChargeRow insert_charge_if_absent(Tx& tx, const ChargeRow& charge, core::Millis now) {
  {
    auto q = tx.conn().query(Sql::kInsertCharge);
    q.bind_all(charge.charge_id, charge.idempotency_key, charge.amount_cents, charge.token,
               charge.status, now);
    q.exec();
  }
  auto stored = find_charge_by_key(tx.conn(), charge.idempotency_key);
  if (!stored) throw std::logic_error("charge vanished inside its write transaction");
  return *stored;
}

std::optional<ChargeRow> find_charge_by_key(Conn& conn, const std::string& idempotency_key) {
  auto q = conn.query(Sql::kFindByKey);
  q.bind(1, idempotency_key);
  return q.one(charge_from);
}

std::vector<ChargeRow> list_charges(Conn& conn, const std::string& idempotency_key) {
  std::vector<ChargeRow> out;
  auto q = conn.query(idempotency_key.empty() ? Sql::kListAll : Sql::kListForClientKey);
  if (!idempotency_key.empty()) q.bind(1, idempotency_key);
  while (q.step()) out.push_back(charge_from(q));
  return out;
}

}  // namespace db
