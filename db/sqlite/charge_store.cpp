#include "db/sqlite/charge_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <stdexcept>

namespace tools {
namespace {

// The store's schema, version 1 (PRAGMA user_version). The table keeps the
// name and shape it had when it lived in the production schema (migrations
// 3 to 6 there), so that tests and tools reading it did not change.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS gateway_charges (
  id               INTEGER PRIMARY KEY,
  charge_id        TEXT    NOT NULL UNIQUE,
  idempotency_key  TEXT    NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 512),
  amount_cents     INTEGER NOT NULL CHECK (amount_cents >= 0),
  token            TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('succeeded','declined')),
  created_at       INTEGER NOT NULL
) STRICT;
PRAGMA user_version = 1;
)sql";

constexpr char kColumns[] =
    "SELECT id, charge_id, idempotency_key, amount_cents, token, status, created_at "
    "FROM gateway_charges ";

Charge charge_from(SQLite::Statement& q) {
  return Charge{q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                q.getColumn(3).getInt64(), q.getColumn(4).getString(), q.getColumn(5).getString(),
                q.getColumn(6).getInt64()};
}

}  // namespace

ChargeStore::ChargeStore(const std::string& path) : path_(path) {
  try {
    db_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db_->exec("PRAGMA journal_mode = WAL");
    db_->exec("PRAGMA synchronous = FULL");
    db_->setBusyTimeout(5000);
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    db_->exec(kSchema);
    tx.commit();
    insert_ = std::make_unique<SQLite::Statement>(
        *db_,
        "INSERT INTO gateway_charges (charge_id, idempotency_key, amount_cents, token, status, "
        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (idempotency_key) DO NOTHING");
    find_ = std::make_unique<SQLite::Statement>(
        *db_, std::string(kColumns) + "WHERE idempotency_key = ?1");
    list_all_ = std::make_unique<SQLite::Statement>(*db_, std::string(kColumns) + "ORDER BY id");
    // A scan for the derived keys: a development tool's table.
    list_for_key_ = std::make_unique<SQLite::Statement>(
        *db_, std::string(kColumns) +
                  "WHERE idempotency_key = ?1 "
                  "OR substr(idempotency_key, 1, length(?1) + 4) = ?1 || ' ac_' ORDER BY id");
  } catch (const std::exception& e) {
    throw std::runtime_error("fake gateway store " + path + ": " + e.what());
  }
}

ChargeStore::~ChargeStore() {
  // Statements before the connection they were prepared on.
  insert_.reset();
  find_.reset();
  list_all_.reset();
  list_for_key_.reset();
}

std::optional<Charge> ChargeStore::find_locked(const std::string& idempotency_key) {
  SQLite::Statement& q = *find_;
  q.reset();
  q.bind(1, idempotency_key);
  if (!q.executeStep()) return std::nullopt;
  Charge found = charge_from(q);
  q.reset();  // ends the statement's read now, not at its next use
  return found;
}

Charge ChargeStore::insert_if_absent(const Charge& charge, core::Millis now) {
  std::lock_guard lock(mu_);
  SQLite::Statement& q = *insert_;
  q.reset();
  q.bind(1, charge.charge_id);
  q.bind(2, charge.idempotency_key);
  q.bind(3, charge.amount_cents);
  q.bind(4, charge.token);
  q.bind(5, charge.status);
  q.bind(6, now);
  q.exec();
  auto stored = find_locked(charge.idempotency_key);
  if (!stored) throw std::logic_error("charge vanished right after its insert");
  return *stored;
}

std::optional<Charge> ChargeStore::find_by_key(const std::string& idempotency_key) {
  std::lock_guard lock(mu_);
  return find_locked(idempotency_key);
}

std::vector<Charge> ChargeStore::list(const std::string& idempotency_key) {
  std::lock_guard lock(mu_);
  SQLite::Statement& q = idempotency_key.empty() ? *list_all_ : *list_for_key_;
  q.reset();
  if (!idempotency_key.empty()) q.bind(1, idempotency_key);
  std::vector<Charge> out;
  while (q.executeStep()) out.push_back(charge_from(q));
  return out;
}

}  // namespace tools
