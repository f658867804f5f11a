#include "db/sqlite/migrations.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace db::sqlite {
namespace {

// Migration 5's C++ part (defined below the list).
void rebuild_ids_never_reused(SQLite::Database& conn);

struct Migration {
  int version;
  const char* name;
  const char* sql;  // may be empty when `run` does the work
  // Runs after `sql`, in the same transaction, for what SQL alone cannot say
  // (a table rebuild that carries the table's current definition over).
  void (*run)(SQLite::Database&) = nullptr;
  // The tables this migration creates: a file at this version or later that
  // lacks one of them is not an aftercommit database (check_schema_is_ours).
  const char* tables = "";
};

// The schema enforces the invariants: unique normalized email, one `created`
// audit row per user, job states and their finished_at, one mailbox message
// per job. Times are INTEGER milliseconds since the Unix epoch, UTC.
constexpr Migration kMigrations[] = {
    {1, "users, audit log, staged jobs, mailbox", R"sql(
CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  email       TEXT    NOT NULL UNIQUE
              CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(trim(email))),
  created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE user_actions (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id),
  action      TEXT    NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX user_actions_by_user ON user_actions(user_id, id);
-- A user is created once, so it has at most one `created` row.
CREATE UNIQUE INDEX user_actions_one_created ON user_actions(user_id) WHERE action = 'created';

CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY,
  kind          TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  state         TEXT    NOT NULL DEFAULT 'available'
                CHECK (state IN ('available','running','retryable','completed','discarded','cancelled')),
  args          TEXT    NOT NULL CHECK (json_valid(args)),
  priority      INTEGER NOT NULL DEFAULT 0,
  attempt       INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts  INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  run_at        INTEGER NOT NULL,
  created_at    INTEGER NOT NULL,
  attempted_at  INTEGER,
  lease_until   INTEGER,
  finished_at   INTEGER,
  errors        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(errors)),
  unique_key    TEXT,
  CHECK ((state IN ('completed','discarded','cancelled')) = (finished_at IS NOT NULL)),
  CHECK ((state = 'running') = (lease_until IS NOT NULL))
) STRICT;
-- Claim order: priority, then run_at, then id, over runnable rows only.
CREATE INDEX jobs_claimable ON jobs(priority, run_at, id) WHERE state IN ('available','retryable');
CREATE INDEX jobs_running_lease ON jobs(lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_state_kind ON jobs(state, kind, id);
-- A unique key is held while its job is not finished.
CREATE UNIQUE INDEX jobs_unique_key ON jobs(unique_key)
  WHERE unique_key IS NOT NULL AND state NOT IN ('completed','discarded','cancelled');

-- Where the demo's side effects land. UNIQUE(job_id): a job delivers at most
-- one message however often it runs. No foreign key to jobs: the cleaner may
-- delete finished jobs long after their message was delivered.
CREATE TABLE mailbox (
  id          INTEGER PRIMARY KEY,
  channel     TEXT    NOT NULL CHECK (channel IN ('email','sms')),
  recipient   TEXT    NOT NULL CHECK (length(recipient) BETWEEN 1 AND 254),
  subject     TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  job_id      INTEGER NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX mailbox_by_recipient ON mailbox(recipient, id);
)sql",
     nullptr, "users user_actions jobs mailbox"},
    // Products: the state column holds services::ProductState (the CHECK lists
    // the same names); UNIQUE(product_id) on product_meta means a product is
    // published (gets its meta row) at most once, whatever the application
    // does. Anagram words: one row per word, so adding a word never rewrites a
    // row another request wrote; a group is the rows sharing a key.
    {2, "products, product meta and state audit, anagram words", R"sql(
CREATE TABLE products (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  owner_email  TEXT    NOT NULL
               CHECK (length(owner_email) BETWEEN 3 AND 254
                      AND owner_email = lower(trim(owner_email))),
  state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','published')),
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE product_meta (
  id          INTEGER PRIMARY KEY,
  product_id  INTEGER NOT NULL UNIQUE REFERENCES products(id),
  note        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;

-- One row per state change; from_state is NULL for the creation.
CREATE TABLE product_state_changes (
  id          INTEGER PRIMARY KEY,
  product_id  INTEGER NOT NULL REFERENCES products(id),
  from_state  TEXT    CHECK (from_state IN ('pending','published')),
  to_state    TEXT    NOT NULL CHECK (to_state IN ('pending','published')),
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX product_state_changes_by_product ON product_state_changes(product_id, id);

-- A word is its own row (no read-modify-write of a shared group row), and
-- key = its letters sorted. Both CHECKs repeat the validation of
-- services/anagrams.h so that no path can store a word the API would reject.
CREATE TABLE anagram_words (
  word        TEXT    NOT NULL PRIMARY KEY
              CHECK (length(word) BETWEEN 1 AND 64 AND word NOT GLOB '*[^a-z]*'),
  key         TEXT    NOT NULL CHECK (length(key) = length(word)),
  created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX anagram_words_by_key ON anagram_words(key, word);
)sql",
     nullptr, "products product_meta product_state_changes anagram_words"},
    {3, "orders, idempotency keys with recovery points, the fake gateway's charges", R"sql(
-- Order lifecycle (services/checkout.h draws it): pending -> paid ->
-- ready_to_ship, or pending -> payment_failed. A charge id exists exactly
-- when the payment went through.
CREATE TABLE orders (
  id             INTEGER PRIMARY KEY,
  state          TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending','paid','payment_failed','ready_to_ship')),
  email          TEXT    NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  phone          TEXT    NOT NULL CHECK (length(phone) BETWEEN 1 AND 32),
  total_cents    INTEGER NOT NULL CHECK (total_cents >= 0),
  payment_token  TEXT    NOT NULL CHECK (length(payment_token) BETWEEN 1 AND 255),
  charge_id      TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  CHECK ((state IN ('paid','ready_to_ship')) = (charge_id IS NOT NULL))
) STRICT;

CREATE TABLE order_items (
  id                INTEGER PRIMARY KEY,
  order_id          INTEGER NOT NULL REFERENCES orders(id),
  sku               TEXT    NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
  quantity          INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  unit_price_cents  INTEGER NOT NULL CHECK (unit_price_cents BETWEEN 0 AND 10000000)
) STRICT;
CREATE INDEX order_items_by_order ON order_items(order_id, id);

-- The order audit log: each transition happens once.
CREATE TABLE order_actions (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  action      TEXT    NOT NULL
              CHECK (action IN ('created','paid','payment_failed','ready_to_ship')),
  detail      TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX order_actions_once ON order_actions(order_id, action);

-- One row per (client scope, Idempotency-Key). Single-phase writes insert it
-- already `finished`, in the request's own transaction. Checkout moves it
-- started -> order_created -> finished, one transaction per phase. A stored
-- response exists exactly when the key is finished; a finished key is never
-- locked.
CREATE TABLE idempotency_keys (
  id                     INTEGER PRIMARY KEY,
  scope                  TEXT    NOT NULL CHECK (length(scope) BETWEEN 1 AND 128),
  key                    TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  method                 TEXT    NOT NULL,
  path                   TEXT    NOT NULL,
  fingerprint            TEXT    NOT NULL CHECK (length(fingerprint) = 64),
  recovery_point         TEXT    NOT NULL
                         CHECK (recovery_point IN ('started','order_created','finished')),
  locked_at              INTEGER,
  order_id               INTEGER REFERENCES orders(id),
  response_status        INTEGER CHECK (response_status BETWEEN 100 AND 599),
  response_content_type  TEXT,
  response_headers       TEXT    CHECK (response_headers IS NULL OR json_valid(response_headers)),
  response_body          TEXT,
  created_at             INTEGER NOT NULL,
  last_run_at            INTEGER NOT NULL,
  UNIQUE (scope, key),
  CHECK ((recovery_point = 'finished') = (response_status IS NOT NULL)),
  CHECK (recovery_point <> 'finished' OR locked_at IS NULL),
  CHECK (recovery_point <> 'order_created' OR order_id IS NOT NULL)
) STRICT;
CREATE INDEX idempotency_keys_unfinished ON idempotency_keys(last_run_at)
  WHERE recovery_point <> 'finished';
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);

-- The fake payment gateway's own table (http/fake_gateway.h): one charge per
-- gateway idempotency key, whatever its outcome.
CREATE TABLE gateway_charges (
  id               INTEGER PRIMARY KEY,
  charge_id        TEXT    NOT NULL UNIQUE,
  idempotency_key  TEXT    NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 512),
  amount_cents     INTEGER NOT NULL CHECK (amount_cents >= 0),
  token            TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('succeeded','declined')),
  created_at       INTEGER NOT NULL
) STRICT;
)sql",
     // gateway_charges is not listed: migration 7 moved it out of this schema.
     nullptr, "orders order_items order_actions idempotency_keys"},
    // Per-kind defaults the Registry writes at start-up so that every staging
    // path (db::stage_job from any service) picks them up; a per-job timeout;
    // a serial key (jobs sharing one run one at a time, in id order); and the
    // cleaner's index over finished jobs.
    {4, "job kinds, timeouts, serial keys, retention index", R"sql(
CREATE TABLE job_kinds (
  kind          TEXT    PRIMARY KEY CHECK (length(kind) BETWEEN 1 AND 64),
  max_attempts  INTEGER NOT NULL CHECK (max_attempts >= 1),
  timeout_ms    INTEGER CHECK (timeout_ms IS NULL OR timeout_ms > 0)
) STRICT;
ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER CHECK (timeout_ms IS NULL OR timeout_ms > 0);
ALTER TABLE jobs ADD COLUMN serial_key TEXT;
-- The unfinished jobs of one serial key, oldest first: a job is claimable
-- only when no older job with its key is unfinished.
CREATE INDEX jobs_serial ON jobs(serial_key, id)
  WHERE serial_key IS NOT NULL AND state IN ('available','running','retryable');
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
)sql",
     nullptr, "job_kinds"},
    // Ids are never reused (docs/RELIABILITY.md, "Over time"). SQLite hands
    // out max(rowid)+1, so once the newest row of a table is deleted its id
    // comes back, and whatever still names the old row (a mailbox message's
    // job_id, a charge made under a key) then names the new one. jobs
    // (deleted by the cleaner), idempotency_keys (by the reaper) and orders
    // (named by keys, jobs and the gateway) are rebuilt AUTOINCREMENT, their
    // sequence seeded above every id anything still refers to.
    //
    // Then, for checkout: the idempotency key sent to the payment gateway is
    // our own, random, stored on the key row (gateway_key), so it names one
    // operation of ours for ever, whatever the client's key; keys that are
    // unfinished now keep the key they may already have charged under (the
    // old derivation from the client's key). A charge pays at most one order
    // (the trigger), and the reaper finds finished keys by age.
    {5, "ids never reused, our own gateway keys, one order per charge", R"sql(
ALTER TABLE idempotency_keys ADD COLUMN gateway_key TEXT
  CHECK (gateway_key IS NULL OR length(gateway_key) BETWEEN 1 AND 512);
UPDATE idempotency_keys
   SET gateway_key = CASE scope WHEN 'anonymous' THEN key ELSE scope || ' ' || key END
 WHERE recovery_point <> 'finished';
CREATE UNIQUE INDEX idempotency_keys_gateway_key ON idempotency_keys(gateway_key)
  WHERE gateway_key IS NOT NULL;
-- The reaper deletes finished keys only, oldest finish first.
CREATE INDEX idempotency_keys_reapable ON idempotency_keys(last_run_at)
  WHERE recovery_point = 'finished';
DROP INDEX idempotency_keys_by_age;

CREATE INDEX orders_by_charge ON orders(charge_id) WHERE charge_id IS NOT NULL;
-- Not a UNIQUE index: a file written before this migration may already hold
-- two orders paid by one charge (the bug this fixes), and the upgrade must
-- still go through. From now on no write can add such a pair.
CREATE TRIGGER orders_one_order_per_charge BEFORE UPDATE OF charge_id ON orders
  WHEN NEW.charge_id IS NOT NULL
   AND EXISTS (SELECT 1 FROM orders WHERE charge_id = NEW.charge_id AND id <> NEW.id)
BEGIN
  SELECT RAISE(ABORT, 'charge_id already pays another order');
END;
)sql",
     rebuild_ids_never_reused},
    // Which workflow a key belongs to (workflow/key_engine.h), so that the
    // completer finds the keys it can resume by name rather than by request
    // path: 'checkout' (resumed at its recovery point) or 'single_phase'
    // (finished in the transaction that inserted it). Existing keys are
    // backfilled from their path, the only place that knowledge was kept.
    {6, "the workflow of each idempotency key", R"sql(
ALTER TABLE idempotency_keys ADD COLUMN workflow TEXT NOT NULL DEFAULT 'single_phase'
  CHECK (length(workflow) BETWEEN 1 AND 64);
UPDATE idempotency_keys SET workflow = 'checkout' WHERE path = '/checkout';
)sql"},
    // The fake payment gateway is a development tool with its own store
    // (db/sqlite/charge_store.h, a file of its own): its table leaves the
    // production schema. Its rows were a demo gateway's records, never the
    // service's: nothing of ours reads them (orders keep their charge_id).
    {7, "the fake gateway's table leaves the production schema", R"sql(
DROP TABLE IF EXISTS gateway_charges;
)sql"},
};

// One column of one row, as an integer (0 for NULL).
std::int64_t scalar(SQLite::Database& conn, const std::string& sql) {
  SQLite::Statement q(conn, sql);
  if (!q.executeStep() || q.getColumn(0).isNull()) return 0;
  return q.getColumn(0).getInt64();
}

// Rebuilds `table` with `id INTEGER PRIMARY KEY AUTOINCREMENT`, keeping every
// column, row, index and trigger it has now, by SQLite's own procedure for
// schema changes ALTER TABLE cannot make (https://sqlite.org/lang_altertable.html,
// "Making Other Kinds Of Table Schema Changes"): create new_X from X's
// current definition, copy, drop X, rename new_X to X, recreate the indexes
// and triggers from their saved SQL. The caller runs it inside the migration
// transaction with foreign keys off, and checks them before COMMIT.
// The definition is read from sqlite_schema rather than written out here, so
// columns added by earlier migrations come along.
//
// Then seeds the table's sequence to at least `floor_sql` (a query for the
// largest id anything still refers to): a deleted row's id was already
// reusable before this migration, and a surviving reference to it must not
// come to name a new row.
void rebuild_with_autoincrement(SQLite::Database& conn, const std::string& table,
                                const std::string& floor_sql) {
  std::string create;
  std::vector<std::string> dependents;  // CREATE INDEX / CREATE TRIGGER
  {
    SQLite::Statement q(
        conn,
        "SELECT type, sql FROM sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL "
        "ORDER BY type = 'table' DESC, rowid");
    q.bind(1, table);
    while (q.executeStep()) {
      if (q.getColumn(0).getString() == "table") {
        create = q.getColumn(1).getString();
      } else {
        dependents.push_back(q.getColumn(1).getString());
      }
    }
  }
  if (create.empty()) throw std::runtime_error("table " + table + " does not exist");
  const std::string staging = "new_" + table;
  if (create.find("AUTOINCREMENT") == std::string::npos) {
    const std::regex head("^CREATE TABLE (\"?)" + table + "\\1\\s*\\(");
    const std::regex id_column("\\bid(\\s+)INTEGER(\\s+)PRIMARY(\\s+)KEY\\b");
    std::smatch m;
    if (!std::regex_search(create, m, head) || m.position(0) != 0) {
      throw std::runtime_error("unexpected definition of table " + table + ": " + create);
    }
    std::string renamed = "CREATE TABLE " + staging + " (" + m.suffix().str();
    if (!std::regex_search(renamed, m, id_column)) {
      throw std::runtime_error("table " + table + " has no `id INTEGER PRIMARY KEY` column");
    }
    renamed.insert(static_cast<std::size_t>(m.position(0) + m.length(0)), " AUTOINCREMENT");
    conn.exec(renamed);
    conn.exec("INSERT INTO " + staging + " SELECT * FROM " + table);
    conn.exec("DROP TABLE " + table);
    conn.exec("ALTER TABLE " + staging + " RENAME TO " + table);
    for (const std::string& sql : dependents) conn.exec(sql);
  }
  const std::int64_t floor = scalar(conn, floor_sql);
  if (floor <= 0) return;
  SQLite::Statement raise(conn, "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1");
  raise.bind(1, table);
  raise.bind(2, floor);
  if (raise.exec() == 0) {
    SQLite::Statement seed(conn, "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)");
    seed.bind(1, table);
    seed.bind(2, floor);
    seed.exec();
  }
}

void rebuild_ids_never_reused(SQLite::Database& conn) {
  // Job ids are named by mailbox messages (job_id) after the cleaner deleted
  // the job.
  rebuild_with_autoincrement(conn, "jobs",
                             "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), "
                             "coalesce((SELECT max(job_id) FROM mailbox), 0))");
  // Key ids were never sent anywhere before this version: their own maximum.
  rebuild_with_autoincrement(conn, "idempotency_keys", "SELECT max(id) FROM idempotency_keys");
  // Orders are never deleted, but their ids are named by keys, items, the
  // audit log and job arguments: none of them may come to name a new order.
  rebuild_with_autoincrement(conn, "orders",
                             "SELECT max(coalesce((SELECT max(id) FROM orders), 0), "
                             "coalesce((SELECT max(order_id) FROM idempotency_keys), 0), "
                             "coalesce((SELECT max(order_id) FROM order_items), 0), "
                             "coalesce((SELECT max(order_id) FROM order_actions), 0), "
                             "coalesce((SELECT max(json_extract(args, '$.order_id')) FROM jobs "
                             "WHERE kind IN ('send_sms','prepare_for_shipping')), 0))");
}

std::vector<std::string> words(const char* list) {
  std::vector<std::string> out;
  std::string word;
  for (const char* p = list;; ++p) {
    if (*p == ' ' || *p == '\0') {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
      if (*p == '\0') return out;
    } else {
      word.push_back(*p);
    }
  }
}

}  // namespace

int latest_schema_version() noexcept {
  return kMigrations[std::size(kMigrations) - 1].version;
}

core::Status check_schema_is_ours(SQLite::Database& conn, const std::string& path, int version) {
  // Every read below in one read transaction, the version read again in it:
  // another server may have migrated the file since the caller read version
  // 0, and its COMMIT must not fall between our reads, or its tables would
  // look like another program's with no version of ours (three servers
  // started at once on a new file). Read only: the destructor rolls back.
  SQLite::Transaction snapshot(conn, SQLite::TransactionBehavior::DEFERRED);
  if (version <= 0) version = conn.execAndGet("PRAGMA user_version").getInt();
  if (version > latest_schema_version()) {
    return core::Status::invalid("database " + path + " is at schema version " +
                                 std::to_string(version) + ", newer than this binary's " +
                                 std::to_string(latest_schema_version()) +
                                 "; refusing to touch it");
  }
  if (version <= 0) {
    // Version 0 is a file no migration of ours has touched: it must be empty.
    std::string names;
    SQLite::Statement q(conn,
                        "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' "
                        "ORDER BY type = 'table' DESC, name LIMIT 4");
    int n = 0;
    while (q.executeStep()) {
      if (++n == 4) {
        names += ", ...";
        break;
      }
      names += (names.empty() ? "" : ", ") + q.getColumn(0).getString();
    }
    if (n == 0) return core::Status::ok();
    return core::Status::invalid(path + " is not an aftercommit database (it holds " + names +
                                 " and no aftercommit schema version); refusing to touch it");
  }
  SQLite::Statement exists(conn, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  for (const Migration& m : kMigrations) {
    if (m.version > version) break;
    for (const std::string& table : words(m.tables)) {
      exists.reset();
      exists.bind(1, table);
      if (!exists.executeStep()) {
        return core::Status::invalid(path + " is not an aftercommit database (schema version " +
                                     std::to_string(version) + " but no table " + table +
                                     "); refusing to touch it");
      }
    }
  }
  return core::Status::ok();
}

int apply_migrations(SQLite::Database& conn, int to) {
  if (to > latest_schema_version()) throw std::logic_error("migration target beyond latest");
  // Read inside the write transaction: another process may have migrated
  // the file since the caller looked.
  const int from = static_cast<int>(scalar(conn, "PRAGMA user_version"));
  for (const Migration& m : kMigrations) {
    if (m.version <= from || m.version > to) continue;
    if (m.sql[0] != '\0') conn.exec(m.sql);
    if (m.run) m.run(conn);
    conn.exec("PRAGMA user_version = " + std::to_string(m.version));
  }
  // Step 10 of SQLite's procedure: the rebuilds ran with foreign keys off,
  // so prove none is broken before COMMIT.
  SQLite::Statement check(conn, "PRAGMA foreign_key_check");
  if (check.executeStep()) {
    throw std::runtime_error("foreign key check failed after migrating: table " +
                             check.getColumn(0).getString() + " row " +
                             check.getColumn(1).getString() + " names a missing " +
                             check.getColumn(2).getString());
  }
  return from;
}

}  // namespace db::sqlite
