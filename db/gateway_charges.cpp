#include "db/gateway_charges.h"

#include <stdexcept>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kInsertCharge[] =
    "INSERT INTO gateway_charges (charge_id, idempotency_key, amount_cents, token, status, "
    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (idempotency_key) DO NOTHING";
constexpr char kFindByKey[] =
    "SELECT id, charge_id, idempotency_key, amount_cents, token, status, created_at "
    "FROM gateway_charges WHERE idempotency_key = ?1";
// Every charge made for a client key: under that key itself, or under one of
// the per-operation keys checkout derives from it ("<key> ac_<random>",
// db/idempotency.cpp). A scan: the fake gateway is a development tool.
constexpr char kListForClientKey[] =
    "SELECT id, charge_id, idempotency_key, amount_cents, token, status, created_at "
    "FROM gateway_charges WHERE idempotency_key = ?1 "
    "OR substr(idempotency_key, 1, length(?1) + 4) = ?1 || ' ac_' ORDER BY id";
constexpr char kListAll[] =
    "SELECT id, charge_id, idempotency_key, amount_cents, token, status, created_at "
    "FROM gateway_charges ORDER BY id";

ChargeRow charge_from(SQLite::Statement& s) {
  return ChargeRow{s.getColumn(0).getInt64(),  s.getColumn(1).getString(),
                   s.getColumn(2).getString(), s.getColumn(3).getInt64(),
                   s.getColumn(4).getString(), s.getColumn(5).getString(),
                   s.getColumn(6).getInt64()};
}

}  // namespace

ChargeRow insert_charge_if_absent(Tx& tx, const ChargeRow& charge, core::Millis now) {
  {
    auto q = tx.conn().query(kInsertCharge);
    q->bindNoCopy(1, charge.charge_id);
    q->bindNoCopy(2, charge.idempotency_key);
    q->bind(3, charge.amount_cents);
    q->bindNoCopy(4, charge.token);
    q->bindNoCopy(5, charge.status);
    q->bind(6, static_cast<std::int64_t>(now));
    q->exec();
  }
  auto stored = find_charge_by_key(tx.conn(), charge.idempotency_key);
  if (!stored) throw std::logic_error("charge vanished inside its write transaction");
  return *stored;
}

std::optional<ChargeRow> find_charge_by_key(Conn& conn, const std::string& idempotency_key) {
  auto q = conn.query(kFindByKey);
  q->bindNoCopy(1, idempotency_key);
  if (!q->executeStep()) return std::nullopt;
  return charge_from(*q);
}

std::vector<ChargeRow> list_charges(Conn& conn, const std::string& idempotency_key) {
  std::vector<ChargeRow> out;
  auto q = conn.query(idempotency_key.empty() ? kListAll : kListForClientKey);
  if (!idempotency_key.empty()) q->bindNoCopy(1, idempotency_key);
  while (q->executeStep()) out.push_back(charge_from(*q));
  return out;
}

}  // namespace db
